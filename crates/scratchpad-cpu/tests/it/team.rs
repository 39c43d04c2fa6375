//! The spinning team: every part runs once, on its own thread, with part
//! 0 on the caller; results match the serial kernels; a panic in a helper
//! reaches the caller and leaves the team usable; helpers that fell asleep
//! wake for the next job.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scratchpad_cpu::{Gemv, Isa, Team, gemv, parts, run_parts};

use crate::support::{context, random};

#[test]
fn every_part_runs_once_on_its_own_thread_with_part_zero_on_the_caller() {
    for threads in [1, 2, 3, 5] {
        let team = Team::new(threads).unwrap();
        assert_eq!(team.threads(), threads);
        let caller = std::thread::current().id();
        team.install(|| {
            assert_eq!(parts(), threads);
            for _ in 0..200 {
                let ran: Vec<Mutex<Vec<std::thread::ThreadId>>> =
                    (0..threads).map(|_| Mutex::new(Vec::new())).collect();
                run_parts(threads, |part| {
                    ran[part].lock().unwrap().push(std::thread::current().id());
                });
                let ids: Vec<_> = ran
                    .iter()
                    .map(|r| {
                        let r = r.lock().unwrap();
                        assert_eq!(r.len(), 1, "a part ran {} times", r.len());
                        r[0]
                    })
                    .collect();
                assert_eq!(ids[0], caller, "part 0 runs on the calling thread");
                let mut distinct = ids.clone();
                distinct.sort_by_key(|id| format!("{id:?}"));
                distinct.dedup();
                assert_eq!(distinct.len(), threads, "two parts shared a thread");
            }
        });
    }
}

#[test]
fn outside_install_and_for_other_counts_the_work_goes_to_rayon() {
    let team = Team::new(2).unwrap();
    // Not installed: rayon's pool decides.
    assert_eq!(parts(), rayon::current_num_threads());
    team.install(|| {
        // A count other than the team's size still runs every part once.
        let count = AtomicUsize::new(0);
        run_parts(7, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 7);
        // Nested install of another team, then back.
        let inner = Team::new(3).unwrap();
        inner.install(|| assert_eq!(parts(), 3));
        assert_eq!(parts(), 2);
    });
    assert_eq!(parts(), rayon::current_num_threads());
}

#[test]
fn gemv_on_a_team_equals_gemv_on_one_thread() {
    let ctx = context();
    let (m, k) = (32000, 288);
    let (w, x) = (random(m * k, 3), random(k, 4));
    for isa in Isa::supported() {
        let params = Gemv { m, k, isa };
        let mut serial = vec![0.0f32; m];
        Team::new(1)
            .unwrap()
            .install(|| gemv(&ctx, &params, &w, &x, &mut serial));
        let mut teamed = vec![f32::NAN; m];
        Team::new(2)
            .unwrap()
            .install(|| gemv(&ctx, &params, &w, &x, &mut teamed));
        // Each row is one thread's sum in the same order: bit for bit.
        assert_eq!(serial, teamed, "{isa}");
    }
}

#[test]
fn a_panic_in_a_helper_reaches_the_caller_and_the_team_goes_on() {
    let team = Team::new(2).unwrap();
    team.install(|| {
        let caught = std::panic::catch_unwind(|| {
            run_parts(2, |part| {
                if part == 1 {
                    panic!("part one fails");
                }
            })
        });
        let payload = caught.expect_err("the helper's panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"part one fails"));
        let count = AtomicUsize::new(0);
        run_parts(2, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 2);
    });
}

#[test]
fn helpers_asleep_between_jobs_wake_for_the_next() {
    let team = Team::new(3).unwrap();
    team.install(|| {
        for round in 0..20 {
            // Longer than the helpers spin before they sleep.
            if round % 4 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let count = AtomicUsize::new(0);
            run_parts(3, |_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(count.into_inner(), 3, "round {round}");
        }
    });
}

#[test]
fn a_job_started_inside_a_part_runs_every_part_once() {
    let team = Team::new(2).unwrap();
    team.install(|| {
        for _ in 0..100 {
            let outer = AtomicUsize::new(0);
            let inner = AtomicUsize::new(0);
            run_parts(2, |_| {
                outer.fetch_add(1, Ordering::Relaxed);
                // On the caller's thread the team is installed and busy; on
                // the helper's, none is: both run all of their parts.
                run_parts(2, |_| {
                    inner.fetch_add(1, Ordering::Relaxed);
                });
            });
            assert_eq!(outer.into_inner(), 2);
            assert_eq!(inner.into_inner(), 4);
        }
    });
}

#[test]
fn a_panic_in_the_callers_part_waits_for_the_helpers_and_leaves_no_trace() {
    let team = Team::new(2).unwrap();
    team.install(|| {
        let caught = std::panic::catch_unwind(|| {
            run_parts(2, |part| {
                if part == 0 {
                    panic!("part zero fails");
                }
                std::thread::sleep(Duration::from_millis(2));
                panic!("part one fails too");
            })
        });
        let payload = caught.expect_err("part zero's panic unwinds");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"part zero fails"));
        // The helper's panic went with it: the next job runs clean.
        let count = AtomicUsize::new(0);
        run_parts(2, |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.into_inner(), 2);
    });
}
