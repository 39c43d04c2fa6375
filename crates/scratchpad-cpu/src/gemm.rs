//! Matrix-matrix product `Y = X · Wᵀ`, the prefill path: `X (m, k)` holds a
//! block of tokens, `W (n, k)` is a row-major weight as in llama2.c, `Y (m,
//! n)` is row-major. Packed and cache-blocked in the BLIS loop order, with a
//! SIMD micro-kernel per path; both packing buffers are scratch leases taken
//! before the fan-out, the A buffer split into one slice per worker.

use rayon::prelude::*;
use scratchpad::{ExecutionContext, HostMemory, ScratchError, ScratchReq, tag};

use crate::Isa;
use crate::microkernel::{self, MicroKernel};
use crate::packing::pack_panels;

/// Depth of a packed block (the `k` extent a micro-kernel streams).
const KC: usize = 256;
/// Panels of A per packed block (`MC = MC_PANELS * MR` rows).
const MC_PANELS: usize = 12;
/// Panels of B per packed block (`NC = NC_PANELS * NR` columns).
const NC_PANELS: usize = 32;
/// The largest `MR * NR` of any kernel, for edge tiles on the stack.
const MAX_TILE: usize = 12 * 32;

/// Shape and path of a [`gemm`]: `Y (m, n) = X (m, k) · W (n, k)ᵀ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    /// Rows of `X` and `Y` (tokens).
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Rows of `W`, columns of `Y` (output features).
    pub n: usize,
    /// The SIMD path.
    pub isa: Isa,
}

impl Gemm {
    /// `Y (m, n) = X (m, k) · W (n, k)ᵀ` on the detected SIMD path.
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        Gemm {
            m,
            k,
            n,
            isa: Isa::detect(),
        }
    }

    fn tile(&self) -> (usize, usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (microkernel::x86::AVX512_MR, microkernel::x86::AVX512_NR),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (microkernel::x86::AVX2_MR, microkernel::x86::AVX2_NR),
            _ => (microkernel::PORTABLE_MR, microkernel::PORTABLE_NR),
        }
    }
}

/// How a [`gemm`] splits its work and its packing buffers, in f32 elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GemmPlan {
    /// Packed block of `W`, shared by the workers.
    pack_b: usize,
    /// Packed blocks of `X`, one slice per worker.
    pack_a: usize,
    /// Workers the rows are split among.
    workers: usize,
    /// Rows per worker (a multiple of the kernel's `MR`).
    rows_per_worker: usize,
    /// Rows per packed A block.
    mc: usize,
}

/// What [`gemm`] leases for `params` when called in the current rayon pool
/// (the split of the rows, and so the packed A blocks, follow its thread
/// count): both packing buffers, live together, under `matmul.scratch`.
pub fn gemm_scratch(params: &Gemm) -> ScratchReq {
    let Gemm { m, k, n, .. } = *params;
    if m == 0 || n == 0 || k == 0 {
        return ScratchReq::NONE;
    }
    let plan = gemm_plan(params, rayon::current_num_threads());
    ScratchReq::new::<f32>(plan.pack_b).and(ScratchReq::new::<f32>(plan.pack_a))
}

fn gemm_plan(params: &Gemm, threads: usize) -> GemmPlan {
    let Gemm { m, k, n, .. } = *params;
    let (mr, nr) = params.tile();
    let kc = KC.min(k);
    let nc = (NC_PANELS * nr).min(n.next_multiple_of(nr));
    let threads = threads.clamp(1, m.div_ceil(mr).max(1));
    let rows_per_worker = m.div_ceil(threads).next_multiple_of(mr).max(mr);
    let workers = m.div_ceil(rows_per_worker).max(1);
    let mc = (MC_PANELS * mr).min(rows_per_worker);
    GemmPlan {
        pack_b: kc * nc,
        pack_a: workers * mc * kc,
        workers,
        rows_per_worker,
        mc,
    }
}

/// `Y = X · Wᵀ`. Leases its packing buffers from `ctx.scratch`; runs in
/// parallel inside the caller's rayon pool, splitting the rows of `Y`.
///
/// # Panics
///
/// When slice lengths do not match the shape, or `params.isa` is not
/// supported by this CPU.
pub fn gemm(
    ctx: &ExecutionContext<HostMemory>,
    params: &Gemm,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
) -> Result<(), ScratchError> {
    let Gemm { m, k, n, isa } = *params;
    assert_eq!(x.len(), m * k, "gemm: X must hold m * k elements");
    assert_eq!(w.len(), n * k, "gemm: W must hold n * k elements");
    assert_eq!(y.len(), m * n, "gemm: Y must hold m * n elements");
    isa.assert_supported();
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        y.fill(0.0);
        return Ok(());
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => driver::<{ microkernel::x86::AVX512_MR }, { microkernel::x86::AVX512_NR }>(
            ctx,
            params,
            x,
            w,
            y,
            microkernel::x86::avx512,
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => driver::<{ microkernel::x86::AVX2_MR }, { microkernel::x86::AVX2_NR }>(
            ctx,
            params,
            x,
            w,
            y,
            microkernel::x86::avx2,
        ),
        _ => driver::<{ microkernel::PORTABLE_MR }, { microkernel::PORTABLE_NR }>(
            ctx,
            params,
            x,
            w,
            y,
            microkernel::portable,
        ),
    }
}

fn driver<const MR: usize, const NR: usize>(
    ctx: &ExecutionContext<HostMemory>,
    params: &Gemm,
    x: &[f32],
    w: &[f32],
    y: &mut [f32],
    kernel: MicroKernel,
) -> Result<(), ScratchError> {
    let Gemm { k, n, .. } = *params;
    let plan = gemm_plan(params, rayon::current_num_threads());
    let nc_block = NC_PANELS * NR;
    ctx.scratch.scope(|s| {
        let mut b_buf = s.acquire::<f32>(plan.pack_b, tag!("matmul.scratch"))?;
        let mut a_buf = s.acquire::<f32>(plan.pack_a, tag!("matmul.scratch"))?;
        let a_slice = a_buf.len() / plan.workers;
        for jc in (0..n).step_by(nc_block) {
            let nc = nc_block.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                pack_panels::<NR>(w, k, jc..jc + nc, pc, kc, &mut b_buf);
                let b = &b_buf[..];
                let block = Block {
                    x,
                    k,
                    n,
                    jc,
                    nc,
                    pc,
                    kc,
                    accumulate: pc > 0,
                    mc: plan.mc,
                    kernel,
                };
                let rows = plan.rows_per_worker * n;
                if plan.workers == 1 {
                    block.run::<MR, NR>(&mut a_buf, b, 0, y);
                } else {
                    a_buf
                        .par_chunks_mut(a_slice)
                        .zip(y.par_chunks_mut(rows).enumerate())
                        .for_each(|(a, (worker, y_rows))| {
                            block.run::<MR, NR>(a, b, worker * plan.rows_per_worker, y_rows)
                        });
                }
            }
        }
        Ok(())
    })
}

/// One `(jc, pc)` block of the product, shared by the workers.
#[derive(Clone, Copy)]
struct Block<'a> {
    x: &'a [f32],
    k: usize,
    n: usize,
    jc: usize,
    nc: usize,
    pc: usize,
    kc: usize,
    accumulate: bool,
    mc: usize,
    kernel: MicroKernel,
}

impl Block<'_> {
    /// Multiplies rows `row0..` of `X` (as many as `y_rows` holds) into
    /// `y_rows`, packing `mc` rows at a time into `a`.
    fn run<const MR: usize, const NR: usize>(
        &self,
        a: &mut [f32],
        b: &[f32],
        row0: usize,
        y_rows: &mut [f32],
    ) {
        let Block {
            x,
            k,
            n,
            jc,
            nc,
            pc,
            kc,
            accumulate,
            mc,
            kernel,
        } = *self;
        let rows = y_rows.len() / n;
        for ic in (0..rows).step_by(mc) {
            let mc_now = mc.min(rows - ic);
            pack_panels::<MR>(x, k, row0 + ic..row0 + ic + mc_now, pc, kc, a);
            for jr in (0..nc).step_by(NR) {
                let b_panel = &b[jr / NR * NR * kc..][..NR * kc];
                for ir in (0..mc_now).step_by(MR) {
                    let a_panel = &a[ir / MR * MR * kc..][..MR * kc];
                    let (rows_here, cols_here) = (MR.min(mc_now - ir), NR.min(nc - jr));
                    let c_offset = (ic + ir) * n + jc + jr;
                    if rows_here == MR && cols_here == NR {
                        let c = &mut y_rows[c_offset..c_offset + (MR - 1) * n + NR];
                        // SAFETY: the panels hold kc * MR and kc * NR floats,
                        // `c` covers an MR × NR tile with row stride n, and
                        // `gemm` checked the CPU supports the kernel.
                        unsafe {
                            kernel(
                                kc,
                                a_panel.as_ptr(),
                                b_panel.as_ptr(),
                                c.as_mut_ptr(),
                                n,
                                accumulate,
                            )
                        };
                    } else {
                        let mut tile = [0.0f32; MAX_TILE];
                        // SAFETY: as above, with `tile` an MR × NR tile of
                        // row stride NR (MR * NR <= MAX_TILE).
                        unsafe {
                            kernel(
                                kc,
                                a_panel.as_ptr(),
                                b_panel.as_ptr(),
                                tile.as_mut_ptr(),
                                NR,
                                false,
                            )
                        };
                        for r in 0..rows_here {
                            let out = &mut y_rows[c_offset + r * n..][..cols_here];
                            for (o, &t) in out.iter_mut().zip(&tile[r * NR..r * NR + cols_here]) {
                                *o = if accumulate { *o + t } else { t };
                            }
                        }
                    }
                }
            }
        }
    }
}
