//! A user-defined strategy plugged in through the SPI: first fit over one
//! fixed slab, refusing what does not fit instead of growing.
//!
//! `cargo run --release -p scratchpad-examples --example custom_strategy`
//!
//! A strategy only does bookkeeping over `(block, offset, capacity)`: it
//! never touches the bytes, so it works on any `Memory`. Implementing
//! `ScratchPool` is `unsafe` because safe code builds `&mut [T]` from the
//! grants: live grants must never overlap.

use scratchpad::{
    BLOCK_ALIGN, Backing, Counters, Grant, HostMemory, Memory, Phase, Pool, Request, ScratchError,
    ScratchPool, StrategyStats, tag,
};

/// First fit in one slab of `slab_bytes`, allocated up front.
struct FirstFitSlab<M: Memory> {
    backing: Backing<M>,
    counters: Counters,
    slab: M::Ptr,
    slab_bytes: usize,
    /// Live ranges `[start, end)`, sorted by start.
    live: Vec<(usize, usize)>,
}

impl<M: Memory> FirstFitSlab<M> {
    fn new(memory: M, slab_bytes: usize) -> Result<Self, ScratchError> {
        let mut backing = Backing::new(memory);
        let slab = backing.allocate(slab_bytes)?;
        Ok(FirstFitSlab {
            backing,
            counters: Counters::default(),
            slab,
            slab_bytes,
            live: Vec::with_capacity(64),
        })
    }
}

// SAFETY: grants lie in the slab (`end <= slab_bytes`), start at multiples of
// 64 (the slab is 64-aligned), and are placed only in gaps between the live
// ranges, which are removed on release; the slab is freed only on drop, when
// no lease can be live.
unsafe impl<M: Memory> ScratchPool<M> for FirstFitSlab<M> {
    fn name(&self) -> &'static str {
        "first-fit-slab"
    }

    fn memory(&self) -> &M {
        self.backing.memory()
    }

    fn acquire(&mut self, request: Request, grant: &mut Grant<M::Ptr>) -> Result<(), ScratchError> {
        let mut start = 0;
        let mut at = self.live.len();
        for (idx, &(s, e)) in self.live.iter().enumerate() {
            if start + request.bytes <= s {
                at = idx;
                break;
            }
            start = e.next_multiple_of(BLOCK_ALIGN);
        }
        if request.bytes > self.slab_bytes {
            return Err(ScratchError::NeverFits {
                requested: request.bytes,
                limit: self.slab_bytes,
            });
        }
        let end = start + request.bytes;
        if end > self.slab_bytes {
            self.counters.misses += 1;
            return Err(ScratchError::OutOfMemory {
                memory: self.backing.memory().name(),
                requested: request.bytes,
                reserved: self.slab_bytes,
                limit: Some(self.slab_bytes),
            });
        }
        self.live.insert(at, (start, end));
        self.counters.hits += 1;
        *grant = Grant {
            base: self.slab,
            offset: start,
            capacity: request.bytes,
            token: 0,
            fresh: false,
        };
        Ok(())
    }

    fn release(&mut self, _request: Request, grant: &Grant<M::Ptr>) {
        let idx = self
            .live
            .iter()
            .position(|&(s, _)| s == grant.offset)
            .expect("a live range");
        self.live.remove(idx);
    }

    fn trim(&mut self) {
        self.counters.trims += 1;
    }

    fn reset_peak(&mut self) {
        self.backing.reset_peak();
    }

    fn stats(&self) -> StrategyStats {
        let used: usize = self.live.iter().map(|(s, e)| e - s).sum();
        self.counters.report(&self.backing, self.slab_bytes - used)
    }
}

impl<M: Memory> Drop for FirstFitSlab<M> {
    fn drop(&mut self) {
        // SAFETY: the pool, and so every lease, is gone.
        unsafe { self.backing.free(self.slab, self.slab_bytes) };
    }
}

fn main() -> anyhow::Result<()> {
    let pool = Pool::new(Box::new(FirstFitSlab::new(HostMemory, 1 << 20)?));
    pool.set_verify(true);
    for pos in 0..64 {
        pool.step(Phase::Decode, |s| -> Result<(), ScratchError> {
            let mut q = s.acquire::<f32>(288, tag!("custom.q"))?;
            let mut scores = s.acquire::<f32>(6 * (pos + 1), tag!("custom.scores"))?;
            q.fill(0.5);
            scores.fill(q[0]);
            Ok(())
        })?;
    }
    let too_big = pool.scope(|s| s.acquire::<u8>(2 << 20, tag!("custom.big")).map(|_| ()));
    let stats = pool.stats();
    println!(
        "{}: {} acquires, {} hits, peak live {} B in a {} B slab; a 2 MiB request: {}",
        pool.strategy_name(),
        stats.acquires,
        stats.hits,
        stats.peak_live_bytes,
        stats.reserved_bytes,
        too_big.err().map_or("served".to_owned(), |e| e.to_string())
    );
    Ok(())
}
