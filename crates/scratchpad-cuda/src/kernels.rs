//! The CUDA C kernels, kept in the crate (`kernels/*.cu`) and compiled at
//! run time with NVRTC, and [`Kernels`]: their launches, one method each.
//!
//! A launch goes through the driver's `cuLaunchKernel` with its arguments
//! in an array on the stack (cudarc's launch builder gathers them in a
//! `Vec`), so a decode step launches without touching the heap. Everything
//! that changes from step to step (positions, token ids) is read by the
//! kernels from device memory, so a captured graph replays with new values.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, CudaStream, result};
use cudarc::nvrtc::{CompileOptions, Ptx};

use crate::memory::bind;
use crate::{CudaError, CudaMemory, DeviceSlice, check_nvrtc};

/// Every kernel source: `(file, source, entry points)`.
pub const SOURCES: [(&str, &str, &[&str]); 4] = [
    (
        "elementwise.cu",
        include_str!("../kernels/elementwise.cu"),
        &["residual_add", "swiglu", "embed", "kv_append"],
    ),
    ("norm.cu", include_str!("../kernels/norm.cu"), &["rms_norm"]),
    (
        "rope.cu",
        include_str!("../kernels/rope.cu"),
        &["rope_table", "apply_rope"],
    ),
    (
        "attention.cu",
        include_str!("../kernels/attention.cu"),
        &["attention"],
    ),
];

/// RMSNorm's epsilon, as in llama2.c.
pub const RMS_NORM_EPS: f32 = 1e-5;

/// Threads per block of the element-wise kernels.
const ELEMENTWISE_BLOCK: u32 = 256;
/// Threads per block of the row reductions (a power of two).
const NORM_BLOCK: u32 = 256;
/// Threads per block of attention (a power of two).
const ATTENTION_BLOCK: u32 = 128;

/// The architecture the kernels are compiled for without a device (the
/// compile test): Hopper, the lent GPUs' (H100, H200).
pub const DEFAULT_ARCH: (i32, i32) = (9, 0);

/// Compiles every kernel source to PTX for virtual architecture
/// `compute_{major}{minor}` (the device's own compute capability when one
/// is open, [`DEFAULT_ARCH`] otherwise), after checking that NVRTC is
/// there and of this build's CUDA version.
pub fn compile_all(arch: (i32, i32)) -> Result<Vec<(&'static str, Ptx)>, CudaError> {
    check_nvrtc()?;
    SOURCES
        .iter()
        .map(|&(name, source, _)| {
            let options = CompileOptions {
                options: vec![format!("--gpu-architecture=compute_{}{}", arch.0, arch.1)],
                ..CompileOptions::default()
            };
            cudarc::nvrtc::compile_ptx_with_opts(source, options)
                .map(|ptx| (name, ptx))
                .map_err(|e| CudaError::Compile {
                    source_name: name,
                    log: e.to_string(),
                })
        })
        .collect()
}

/// Kernel arguments held in place while a launch reads them: a tuple of
/// plain values (device addresses as `u64`, `i32`, `f32`), whose fields'
/// addresses make the parameter array.
trait KernelArgs {
    fn with_params<R>(&mut self, f: impl FnOnce(&mut [*mut c_void]) -> R) -> R;
}

macro_rules! kernel_args {
    ($($name:ident)+) => {
        impl<$($name: Copy),+> KernelArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn with_params<R>(&mut self, f: impl FnOnce(&mut [*mut c_void]) -> R) -> R {
                let ($($name,)+) = self;
                let mut params = [$($name as *mut $name as *mut c_void),+];
                f(&mut params)
            }
        }
    };
}

kernel_args!(A B C);
kernel_args!(A B C D);
kernel_args!(A B C D E);
kernel_args!(A B C D E F G);
kernel_args!(A B C D E F G H I J);

fn int(value: usize, what: &'static str) -> i32 {
    i32::try_from(value).unwrap_or_else(|_| panic!("{what} ({value}) does not fit a kernel's i32"))
}

fn blocks(threads: usize, per_block: u32) -> u32 {
    u32::try_from(threads.div_ceil(per_block as usize))
        .expect("a launch of more than 2^32 blocks")
        .max(1)
}

/// The loaded kernels of one context, launched on one stream.
pub struct Kernels {
    stream: Arc<CudaStream>,
    residual_add: CudaFunction,
    swiglu: CudaFunction,
    embed: CudaFunction,
    kv_append: CudaFunction,
    rms_norm: CudaFunction,
    rope_table: CudaFunction,
    apply_rope: CudaFunction,
    attention: CudaFunction,
    _modules: Vec<Arc<CudaModule>>,
}

impl Kernels {
    /// Compiles every source with NVRTC for the device's compute capability
    /// and loads it on `memory`'s context; launches go on its stream.
    pub fn load(memory: &CudaMemory) -> Result<Self, CudaError> {
        let stream = memory.stream().clone();
        let ctx = stream.context().clone();
        let arch = ctx.compute_capability()?;
        let mut modules = Vec::new();
        let mut functions = Vec::new();
        for ((_, ptx), (_, _, entries)) in compile_all(arch)?.into_iter().zip(SOURCES) {
            let module = ctx.load_module(ptx)?;
            for entry in entries {
                functions.push(module.load_function(entry)?);
            }
            modules.push(module);
        }
        let mut f = functions.into_iter();
        let mut next = || f.next().expect("one function per entry point");
        Ok(Kernels {
            residual_add: next(),
            swiglu: next(),
            embed: next(),
            kv_append: next(),
            rms_norm: next(),
            rope_table: next(),
            apply_rope: next(),
            attention: next(),
            stream,
            _modules: modules,
        })
    }

    /// The stream every launch goes on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    fn launch(
        &self,
        f: &CudaFunction,
        grid: u32,
        block: u32,
        shared_bytes: u32,
        mut args: impl KernelArgs,
    ) -> Result<(), CudaError> {
        // The driver launches on the calling thread's current context.
        bind(self.stream.context())?;
        args.with_params(|params| {
            // SAFETY: `f` is a kernel of this context (the module is kept
            // alive in `self`); `params` points at one value per kernel
            // parameter, of the kernel's parameter types, which live until
            // `cuLaunchKernel` has copied them; every address among them is
            // a view the caller borrowed, checked against the shape.
            unsafe {
                result::launch_kernel(
                    f.cu_function(),
                    (grid, 1, 1),
                    (block, 1, 1),
                    shared_bytes,
                    self.stream.cu_stream(),
                    params,
                )
            }
        })?;
        Ok(())
    }

    /// `x += delta`.
    ///
    /// # Panics
    ///
    /// When the lengths differ.
    pub fn residual_add(
        &self,
        x: &mut DeviceSlice<'_, f32>,
        delta: &DeviceSlice<'_, f32>,
    ) -> Result<(), CudaError> {
        self.in_place(&self.residual_add, "residual_add", x, delta)
    }

    /// `gate = silu(gate) ⊙ up`.
    ///
    /// # Panics
    ///
    /// When the lengths differ.
    pub fn swiglu(
        &self,
        gate: &mut DeviceSlice<'_, f32>,
        up: &DeviceSlice<'_, f32>,
    ) -> Result<(), CudaError> {
        self.in_place(&self.swiglu, "swiglu", gate, up)
    }

    /// An element-wise kernel `f(a, b, n)` that updates `a` from `b`.
    fn in_place(
        &self,
        f: &CudaFunction,
        name: &str,
        a: &mut DeviceSlice<'_, f32>,
        b: &DeviceSlice<'_, f32>,
    ) -> Result<(), CudaError> {
        assert_eq!(a.len(), b.len(), "{name}: lengths differ");
        let n = a.len();
        self.launch(
            f,
            blocks(n, ELEMENTWISE_BLOCK),
            ELEMENTWISE_BLOCK,
            0,
            (a.device_ptr(), b.device_ptr(), int(n, "length")),
        )
    }

    /// `out[t] = table[tokens[t]]`, rows of `dim`; the ids are read on the
    /// device (the caller checked them against the vocabulary).
    ///
    /// # Panics
    ///
    /// When `out` is not `tokens.len() × dim` or `table` not whole rows.
    pub fn embed(
        &self,
        table: &DeviceSlice<'_, f32>,
        tokens: &DeviceSlice<'_, i32>,
        out: &mut DeviceSlice<'_, f32>,
        dim: usize,
    ) -> Result<(), CudaError> {
        let n = tokens.len();
        assert!(
            dim > 0 && table.len().is_multiple_of(dim),
            "embed: the table must be whole rows of dim"
        );
        assert_eq!(out.len(), n * dim, "embed: out must hold n_tokens × dim");
        self.launch(
            &self.embed,
            blocks(n * dim, ELEMENTWISE_BLOCK),
            ELEMENTWISE_BLOCK,
            0,
            (
                table.device_ptr(),
                tokens.device_ptr(),
                out.device_ptr(),
                int(dim, "dim"),
                int(n, "tokens"),
            ),
        )
    }

    /// Stores `k` and `v` (`n_tokens × kv_dim`) at rows `*pos..` of one
    /// layer's `keys` and `values` (`seq_len × kv_dim`); `pos` is read on
    /// the device.
    ///
    /// # Panics
    ///
    /// When the shapes do not match.
    pub fn kv_append(
        &self,
        keys: &mut DeviceSlice<'_, f32>,
        values: &mut DeviceSlice<'_, f32>,
        k: &DeviceSlice<'_, f32>,
        v: &DeviceSlice<'_, f32>,
        pos: &DeviceSlice<'_, i32>,
        kv_dim: usize,
    ) -> Result<(), CudaError> {
        assert_eq!(k.len(), v.len(), "kv_append: k and v differ");
        assert_eq!(keys.len(), values.len(), "kv_append: the caches differ");
        assert!(
            kv_dim > 0 && k.len().is_multiple_of(kv_dim) && k.len() <= keys.len(),
            "kv_append: k must be whole rows of kv_dim that fit the cache"
        );
        assert_eq!(pos.len(), 1, "kv_append: pos is one value");
        let n = k.len() / kv_dim;
        self.launch(
            &self.kv_append,
            blocks(n * kv_dim, ELEMENTWISE_BLOCK),
            ELEMENTWISE_BLOCK,
            0,
            (
                keys.device_ptr(),
                values.device_ptr(),
                k.device_ptr(),
                v.device_ptr(),
                pos.device_ptr(),
                int(kv_dim, "kv_dim"),
                int(n, "tokens"),
            ),
        )
    }

    /// RMSNorm of each row of `x` (rows of `weight.len()`), into `out`.
    ///
    /// # Panics
    ///
    /// When the shapes do not match.
    pub fn rms_norm(
        &self,
        x: &DeviceSlice<'_, f32>,
        weight: &DeviceSlice<'_, f32>,
        out: &mut DeviceSlice<'_, f32>,
    ) -> Result<(), CudaError> {
        let dim = weight.len();
        assert!(
            dim > 0 && x.len().is_multiple_of(dim),
            "rms_norm: x must be whole rows of weight.len()"
        );
        assert_eq!(x.len(), out.len(), "rms_norm: out must match x");
        let rows = x.len() / dim;
        if rows == 0 {
            return Ok(());
        }
        self.launch(
            &self.rms_norm,
            blocks(rows, 1),
            NORM_BLOCK,
            NORM_BLOCK * 4,
            (
                x.device_ptr(),
                weight.device_ptr(),
                out.device_ptr(),
                int(dim, "dim"),
                RMS_NORM_EPS,
            ),
        )
    }

    /// Fills `table` with the rotations of `n_tokens` positions from
    /// `*pos` on (read on the device): `n_tokens × head_dim / 2` pairs
    /// `(cos, sin)`, computed in double precision as on the host.
    ///
    /// # Panics
    ///
    /// When the table is not that long or `head_dim` is odd.
    pub fn rope_table(
        &self,
        table: &mut DeviceSlice<'_, f32>,
        pos: &DeviceSlice<'_, i32>,
        head_dim: usize,
        n_tokens: usize,
    ) -> Result<(), CudaError> {
        assert!(
            head_dim.is_multiple_of(2),
            "rope_table: head_dim must be even"
        );
        assert_eq!(
            table.len(),
            n_tokens * head_dim,
            "rope_table: the table must hold n_tokens × head_dim / 2 pairs"
        );
        assert_eq!(pos.len(), 1, "rope_table: pos is one value");
        if table.is_empty() {
            return Ok(());
        }
        self.launch(
            &self.rope_table,
            blocks(n_tokens * head_dim / 2, ELEMENTWISE_BLOCK),
            ELEMENTWISE_BLOCK,
            0,
            (
                table.device_ptr(),
                pos.device_ptr(),
                int(head_dim, "head_dim"),
                int(n_tokens, "tokens"),
            ),
        )
    }

    /// Rotates `q` (`n_tokens × n_heads × head_dim`) and `k` (`n_tokens ×
    /// n_kv_heads × head_dim`) in place by a table from
    /// [`Kernels::rope_table`].
    ///
    /// # Panics
    ///
    /// When the shapes do not match or `head_dim` is odd.
    pub fn apply_rope(
        &self,
        q: &mut DeviceSlice<'_, f32>,
        k: &mut DeviceSlice<'_, f32>,
        table: &DeviceSlice<'_, f32>,
        shape: &Heads,
    ) -> Result<(), CudaError> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = *shape;
        assert!(
            head_dim.is_multiple_of(2),
            "apply_rope: head_dim must be even"
        );
        assert!(
            q.len().is_multiple_of(n_heads * head_dim),
            "apply_rope: q must be whole tokens"
        );
        let n = q.len() / (n_heads * head_dim);
        assert_eq!(
            k.len(),
            n * n_kv_heads * head_dim,
            "apply_rope: k must match q"
        );
        assert_eq!(
            table.len(),
            n * head_dim,
            "apply_rope: the table must match q"
        );
        let pairs = n * (n_heads + n_kv_heads) * head_dim / 2;
        if pairs == 0 {
            return Ok(());
        }
        self.launch(
            &self.apply_rope,
            blocks(pairs, ELEMENTWISE_BLOCK),
            ELEMENTWISE_BLOCK,
            0,
            (
                q.device_ptr(),
                k.device_ptr(),
                table.device_ptr(),
                int(n_heads, "n_heads"),
                int(n_kv_heads, "n_kv_heads"),
                int(head_dim, "head_dim"),
                int(n, "tokens"),
            ),
        )
    }

    /// Causal attention of `q` (`n_queries × n_heads × head_dim`, query `i`
    /// at position `*pos + i`) over one layer's cache (`keys`, `values`:
    /// rows of `n_kv_heads × head_dim`), into `out` (the shape of `q`).
    /// `scores` is scratch of `n_queries × n_heads × ctx_stride` floats,
    /// where `ctx_stride` is at least the last query's position + 1: a
    /// decode step that leases `seq_len` per head replays at every
    /// position.
    ///
    /// # Panics
    ///
    /// When the shapes do not match, `n_kv_heads` does not divide `n_heads`
    /// or the cache is shorter than `ctx_stride` rows.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        q: &DeviceSlice<'_, f32>,
        keys: &DeviceSlice<'_, f32>,
        values: &DeviceSlice<'_, f32>,
        out: &mut DeviceSlice<'_, f32>,
        scores: &mut DeviceSlice<'_, f32>,
        pos: &DeviceSlice<'_, i32>,
        shape: &Heads,
        ctx_stride: usize,
    ) -> Result<(), CudaError> {
        let Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        } = *shape;
        assert!(
            n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads),
            "attention: n_kv_heads must divide n_heads"
        );
        let dim = n_heads * head_dim;
        assert!(
            dim > 0 && q.len().is_multiple_of(dim),
            "attention: q must be whole queries"
        );
        let n = q.len() / dim;
        assert_eq!(out.len(), q.len(), "attention: out must match q");
        assert_eq!(
            scores.len(),
            n * n_heads * ctx_stride,
            "attention: scores must hold n_queries × n_heads × ctx_stride"
        );
        let kv_dim = n_kv_heads * head_dim;
        assert!(
            keys.len() == values.len() && keys.len() >= ctx_stride * kv_dim,
            "attention: the cache must hold ctx_stride rows"
        );
        assert_eq!(pos.len(), 1, "attention: pos is one value");
        if n == 0 {
            return Ok(());
        }
        self.launch(
            &self.attention,
            blocks(n * n_heads, 1),
            ATTENTION_BLOCK,
            ATTENTION_BLOCK * 4,
            (
                q.device_ptr(),
                keys.device_ptr(),
                values.device_ptr(),
                out.device_ptr(),
                scores.device_ptr(),
                pos.device_ptr(),
                int(n_heads, "n_heads"),
                int(n_kv_heads, "n_kv_heads"),
                int(head_dim, "head_dim"),
                int(ctx_stride, "ctx_stride"),
            ),
        )
    }
}

/// The head layout the rotary and attention kernels need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads; divides `n_heads`.
    pub n_kv_heads: usize,
    /// Dimension of one head.
    pub head_dim: usize,
}
