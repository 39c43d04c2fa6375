//! The `scratchpad` binary: `generate` text with a llama2.c model (run.c's
//! flags and output), `compare` pool strategies on the same work, record a
//! `trace` and `replay` it through every strategy, and `synth` a synthetic
//! checkpoint.
#![forbid(unsafe_code)]

mod compare;
mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scratchpad::{CountingAlloc, HostMemory, Pool, PoolOptions, STRATEGY_NAMES, Trace};
use scratchpad_model::{
    BOS, Checkpoint, CudaOptions, DeviceChoice, Engine, Matmul, Sampler, Tokenizer, Transformer,
    check_memory, generate, synthetic,
};

/// Every heap allocation of the process is counted: `compare` reports them.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A mini tensor runtime whose every scratch buffer comes from one pluggable pool.
#[derive(Parser)]
#[command(name = "scratchpad", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text (run.c's flags and output).
    Generate(GenerateArgs),
    /// Run the same workload under every pool strategy and compare them.
    Compare(CompareArgs),
    /// Record the scratch trace of one run of the workload.
    Trace(TraceArgs),
    /// Replay a trace through every strategy, without the model.
    Replay(ReplayArgs),
    /// Write a synthetic checkpoint.
    Synth(SynthArgs),
}

#[derive(Args)]
struct WorkloadArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt length (the prefill block).
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Decode tokens after the prompt (greedy, not stopping at BOS).
    #[arg(long, default_value_t = 64)]
    steps: usize,
    /// The prompt as text instead of seeded token ids (needs --tokenizer).
    #[arg(long)]
    prompt: Option<String>,
    /// Tokenizer for --prompt.
    #[arg(short = 'z', long)]
    tokenizer: Option<PathBuf>,
    /// Seed of the prompt's token ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    device: DeviceArgs,
    /// best-fit's (and planned's fallback's) retained-bytes cap [default: SCRATCHPAD_MAX_RETAINED_BYTES or 100 MiB].
    #[arg(long)]
    max_retained_bytes: Option<usize>,
    /// size-classed's idle buffers per class [default: 8].
    #[arg(long)]
    per_class_cap: Option<usize>,
}

impl WorkloadArgs {
    fn options(&self) -> anyhow::Result<PoolOptions> {
        let mut options = PoolOptions::from_env()?;
        if let Some(bytes) = self.max_retained_bytes {
            options.max_retained_bytes = bytes;
        }
        if let Some(cap) = self.per_class_cap {
            options.per_class_cap = cap;
        }
        Ok(options)
    }

    fn workload(&self, plant_allocation: bool) -> anyhow::Result<compare::Workload> {
        let model = Arc::new(self.model.load("synth-15m")?);
        let config = *model.config();
        let prompt = match (&self.prompt, &self.tokenizer) {
            (Some(text), Some(path)) => {
                let tokenizer = Tokenizer::open(path, config.vocab_size)?;
                check_prompt_length(&tokenizer, text, config.seq_len)?;
                tokenizer.encode(text, true, false)
            }
            (Some(_), None) => bail!("--prompt needs a tokenizer (-z PATH)"),
            (None, _) => {
                if self.prompt_tokens == 0 {
                    bail!("--prompt-tokens must be at least 1");
                }
                // Checked before the prompt is made: a huge count would
                // be allocated first.
                if self.prompt_tokens > config.seq_len {
                    bail!(
                        "--prompt-tokens {} is beyond the model's context of {} positions",
                        self.prompt_tokens,
                        config.seq_len
                    );
                }
                let mut state = self.seed.max(1);
                let vocab = config.vocab_size as u64;
                (0..self.prompt_tokens)
                    .map(|_| {
                        state ^= state >> 12;
                        state ^= state << 25;
                        state ^= state >> 27;
                        (3 + (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % (vocab - 3).max(1))
                            as u32
                    })
                    .collect()
            }
        };
        if self.steps == 0 {
            bail!("--steps must be at least 1: the decode phase is never empty");
        }
        if prompt
            .len()
            .checked_add(self.steps)
            .is_none_or(|end| end > config.seq_len)
        {
            bail!(
                "a prompt of {} tokens and {} steps need more positions than the model's context of {}",
                prompt.len(),
                self.steps,
                config.seq_len
            );
        }
        Ok(compare::Workload {
            model,
            prompt,
            steps: self.steps,
            options: self.options()?,
            plant_allocation,
        })
    }
}

/// Refuses, before encoding (which is quadratic in the text), a prompt that
/// cannot fit the context: it needs at least
/// [`Tokenizer::min_tokens`] tokens.
fn check_prompt_length(tokenizer: &Tokenizer, text: &str, seq_len: usize) -> anyhow::Result<()> {
    let least = tokenizer.min_tokens(text);
    if least > seq_len {
        bail!(
            "the prompt is {} bytes, at least {least} tokens, but the model's context holds {seq_len}",
            text.len()
        );
    }
    Ok(())
}

/// `--help`'s text for a strategy option: `what`, then every strategy of
/// the registry with its policy.
fn strategy_help(what: &str) -> String {
    let mut help = format!("{what}. One of:");
    for s in scratchpad::STRATEGIES {
        help.push_str(&format!(
            "\n  {:<13} {} (after {})",
            s.name, s.policy, s.after
        ));
    }
    help
}

/// Strategy names from `--pools` (all when empty; all that run on any
/// memory for `--device cuda`), each checked.
fn strategies(
    pools: &[String],
    options: &PoolOptions,
    device: Device,
) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = if pools.is_empty() {
        match device {
            Device::Cpu => STRATEGY_NAMES.iter().map(|s| s.to_string()).collect(),
            Device::Cuda => scratchpad::device_strategy_names()
                .map(str::to_string)
                .collect(),
        }
    } else {
        pools.to_vec()
    };
    for name in &names {
        scratchpad::create_strategy(name, HostMemory, options)?;
        if device == Device::Cuda && scratchpad::strategy_info(name).is_some_and(|s| s.host_only) {
            bail!("the `{name}` pool runs on host memory only; it cannot serve --device cuda");
        }
    }
    Ok(names)
}

/// Where the model runs.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Device {
    /// The host, with the SIMD kernels.
    Cpu,
    /// CUDA device 0.
    Cuda,
}

#[derive(Args)]
struct DeviceArgs {
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    device: Device,
    /// CUDA: the library of the matrix products, cublas or cublaslt [default: cublas].
    #[arg(long)]
    matmul: Option<Matmul>,
    /// CUDA: capture the decode step once and replay it (needs a planned, arena or workspace pool).
    #[arg(long)]
    cuda_graph: bool,
    /// CUDA: let the matmul library use TF32 tensor cores (off: full f32 products).
    #[arg(long)]
    tf32: bool,
}

impl DeviceArgs {
    /// Where the workload runs, every argument checked before the device
    /// is opened: the CUDA options need `--device cuda`, and graph replay
    /// needs `strategies` whose addresses are stable.
    fn engine(&self, strategies: &[String]) -> anyhow::Result<Engine> {
        let choice = match self.device {
            Device::Cpu => {
                if self.cuda_graph || self.tf32 || self.matmul.is_some() {
                    bail!("--cuda-graph, --matmul and --tf32 apply to --device cuda only");
                }
                DeviceChoice::Cpu
            }
            // `Engine::open` refuses strategies graph replay cannot use
            // before it opens the device.
            Device::Cuda => DeviceChoice::Cuda(CudaOptions {
                matmul: self.matmul.unwrap_or_default(),
                tf32: self.tf32,
                graph: self.cuda_graph,
                ..CudaOptions::default()
            }),
        };
        Ok(Engine::open(choice, strategies)?)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Prefill and decode of one workload, per strategy.
    Default,
    /// Prompts of varying lengths through one pool, prefill only.
    Churn,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Strategies to compare, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', long_help = strategy_help("Strategies to compare, comma-separated [default: all]"))]
    pools: Vec<String>,
    /// Repetitions, strategies interleaved.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Also print acquires and peak live bytes per call site.
    #[arg(long)]
    by_tag: bool,
    /// Write every figure and the run's settings as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write SVG charts into this folder (created if missing).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The workload.
    #[arg(long, value_enum, default_value = "default")]
    scenario: Scenario,
    /// Prompt lengths of the churn scenario, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128,500,256,384,64")]
    churn_lengths: Vec<usize>,
    /// Test hook: plant one heap allocation in every counted decode step.
    #[arg(long, hide = true)]
    plant_allocation: bool,
}

#[derive(Args)]
struct TraceArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Where to write the trace (JSON).
    #[arg(long)]
    out: PathBuf,
    /// The strategy the run uses (the trace does not depend on it).
    #[arg(long, default_value = "best-fit", long_help = strategy_help("The strategy the run uses (the trace does not depend on it)"))]
    pool: String,
}

#[derive(Args)]
struct ReplayArgs {
    /// A trace written by `scratchpad trace` or another runtime.
    trace: PathBuf,
    /// Strategies, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', long_help = strategy_help("Strategies, comma-separated [default: all]"))]
    pools: Vec<String>,
    /// best-fit's retained-bytes cap.
    #[arg(long)]
    max_retained_bytes: Option<usize>,
    /// size-classed's idle buffers per class.
    #[arg(long)]
    per_class_cap: Option<usize>,
    /// Write every figure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ModelArgs {
    /// A llama2.c checkpoint.
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<PathBuf>,
    /// A built-in synthetic model, synth-15m or synth-260k [default: synth-15m; synth-260k for compare --scenario churn].
    #[arg(long)]
    synthetic: Option<String>,
    /// The most bytes the run may hold (KV cache, activations, state,
    /// weights copied into memory) [default: the memory available now].
    #[arg(long)]
    max_memory: Option<usize>,
}

impl ModelArgs {
    /// The checkpoint, or the synthetic model asked for (`default` when
    /// neither is given), checked against the memory budget.
    fn load(&self, default: &str) -> anyhow::Result<Checkpoint> {
        let model = match (&self.model, &self.synthetic) {
            (Some(path), _) => Checkpoint::open(path)?,
            (None, name) => {
                synthetic::checkpoint(name.as_deref().unwrap_or(default), synthetic::DEFAULT_SEED)?
            }
        };
        check_memory(&model, self.max_memory)?;
        Ok(model)
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A llama2.c tokenizer.bin; without one, token ids are printed.
    #[arg(short = 'z', long)]
    tokenizer: Option<PathBuf>,
    /// The prompt (needs a tokenizer).
    #[arg(short = 'i', long)]
    prompt: Option<String>,
    /// Positions to run, the prompt included [default: the smaller of 256 and seq_len].
    #[arg(short = 'n', long)]
    steps: Option<usize>,
    /// Sampling temperature; 0 is greedy.
    #[arg(
        short = 't',
        long,
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    temperature: f32,
    /// Top-p (nucleus) sampling threshold in [0, 1]; 0 or 1 samples the whole distribution.
    #[arg(
        short = 'p',
        long = "top-p",
        default_value_t = 0.9,
        allow_negative_numbers = true
    )]
    top_p: f32,
    /// Sampler seed [default: the current time].
    #[arg(short = 's', long)]
    seed: Option<u64>,
    /// The scratch pool's strategy (--help lists them).
    #[arg(long, default_value = "planned", long_help = strategy_help("The scratch pool's strategy"))]
    pool: String,
    #[command(flatten)]
    device: DeviceArgs,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct SynthArgs {
    /// synth-15m or synth-260k.
    preset: String,
    /// Where to write the checkpoint.
    #[arg(long)]
    out: PathBuf,
    /// Generator seed (not 0).
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = scratchpad_model::check_simd_env()
        .map_err(anyhow::Error::from)
        .and_then(|()| match cli.command {
            Command::Generate(args) => run_generate(args),
            Command::Compare(args) => run_compare(args),
            Command::Trace(args) => run_trace(args),
            Command::Replay(args) => run_replay(args),
            Command::Synth(args) => run_synth(args),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn thread_pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    // More workers than cores only adds contention; far more is a mistake
    // (a million threads would never finish spawning).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > 4 * cores {
        bail!(
            "--threads {threads} is more than 4 times the {cores} cores here; use at most {}",
            4 * cores
        );
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the worker threads")
}

fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) {
        bail!(
            "--temperature must be a finite number >= 0, not {}",
            args.temperature
        );
    }
    if !(0.0..=1.0).contains(&args.top_p) {
        bail!("--top-p must lie in [0, 1], not {}", args.top_p);
    }
    let options = PoolOptions::from_env()?;
    strategies(
        std::slice::from_ref(&args.pool),
        &options,
        args.device.device,
    )?;
    let engine = args.device.engine(std::slice::from_ref(&args.pool))?;
    let model = Arc::new(args.model.load("synth-15m")?);
    let config = *model.config();
    let tokenizer = args
        .tokenizer
        .as_deref()
        .map(|path| Tokenizer::open(path, config.vocab_size))
        .transpose()?;
    let steps = args.steps.unwrap_or(256.min(config.seq_len));
    if steps > config.seq_len {
        bail!(
            "-n {steps} is beyond the model's context of {} positions",
            config.seq_len
        );
    }
    let prompt = match (&tokenizer, &args.prompt) {
        (Some(t), prompt) => {
            let text = prompt.as_deref().unwrap_or("");
            check_prompt_length(t, text, config.seq_len)?;
            t.encode(text, true, false)
        }
        (None, Some(_)) => bail!("a prompt needs a tokenizer (-z PATH)"),
        (None, None) => vec![BOS],
    };
    if prompt.len() > config.seq_len {
        bail!(
            "the prompt is {} tokens long but the model's context holds {}",
            prompt.len(),
            config.seq_len
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let mut sampler = Sampler::new(config.vocab_size, args.temperature, args.top_p, seed);
    let pool = thread_pool(args.threads)?;
    let generation = pool.install(move || -> anyhow::Result<_> {
        let run = Run {
            tokenizer: tokenizer.as_ref(),
            sampler: &mut sampler,
            prompt: &prompt,
            steps,
        };
        run.on(engine.transformer(&model, &args.pool, &options)?)
    })?;
    if let Some(rate) = generation.tokens_per_second {
        eprintln!("achieved tok/s: {rate:.6}");
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let options = args.workload.options()?;
    let names = strategies(&args.pools, &options, args.workload.device.device)?;
    let engine = args.workload.device.engine(&names)?;
    let pool = thread_pool(args.workload.threads)?;
    let threads = pool.current_num_threads();
    let stdout = std::io::stdout();
    if args.scenario == Scenario::Churn {
        let model = Arc::new(args.workload.model.load("synth-260k")?);
        let lengths = args.churn_lengths.clone();
        let rows = pool.install(|| compare::churn(&model, &names, &options, &lengths, &engine))?;
        compare::print_churn(&rows, &lengths, &mut stdout.lock())?;
        if let Some(path) = &args.json {
            let json = report::churn_json(&model, threads, &options, &rows);
            write_whole(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        }
        return Ok(());
    }
    let workload = args.workload.workload(args.plant_allocation)?;
    let progress = report::progress((args.repeat * names.len()) as u64);
    let runs = pool.install(|| -> anyhow::Result<Vec<Vec<compare::Run>>> {
        let mut runs: Vec<Vec<compare::Run>> = names
            .iter()
            .map(|_| Vec::with_capacity(args.repeat))
            .collect();
        for _ in 0..args.repeat {
            for (name, out) in names.iter().zip(&mut runs) {
                progress.set_message(name.clone());
                out.push(compare::run_once(&workload, name, &engine, None)?);
                progress.inc(1);
            }
        }
        Ok(runs)
    })?;
    progress.finish_and_clear();
    let reports = compare::report(&names, &runs)?;
    let mut out = stdout.lock();
    let c = workload.model.config();
    writeln!(
        out,
        "{} ({} layers, dim {}, vocab {}): {} prompt tokens, {} decode steps, {}, {} repetitions, strategies interleaved",
        workload.model.source().display(),
        c.n_layers,
        c.dim,
        c.vocab_size,
        workload.prompt.len(),
        workload.steps,
        engine.describe(threads),
        args.repeat
    )?;
    if engine.pools_on_device() {
        writeln!(
            out,
            "pool figures are device memory (peak, lower bnd, footprint, retained; mem/t = cuMemAlloc calls per token); allocs/t and bytes/t are host heap"
        )?;
    }
    compare::print_table(&reports, &mut out)?;
    writeln!(
        out,
        "
all {} strategies generated the same {} tokens",
        names.len(),
        workload.steps
    )?;
    if args.by_tag {
        compare::print_tags(&runs[0][0].tags, &reports, &mut out)?;
    }
    if let Some(path) = &args.json {
        let mut json =
            report::compare_json(&workload, threads, args.repeat, &reports, &runs[0][0].tags);
        json["settings"]["device"] = engine.describe(threads).into();
        write_whole(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    if let Some(dir) = &args.plot {
        report::plots(dir, &reports)?;
    }
    Ok(())
}

fn run_trace(args: TraceArgs) -> anyhow::Result<()> {
    let workload = args.workload.workload(false)?;
    strategies(
        std::slice::from_ref(&args.pool),
        &workload.options,
        args.workload.device.device,
    )?;
    let engine = args
        .workload
        .device
        .engine(std::slice::from_ref(&args.pool))?;
    let pool = thread_pool(args.workload.threads)?;
    let mut trace = None;
    pool.install(|| compare::run_once(&workload, &args.pool, &engine, Some(&mut trace)))?;
    let trace = trace.context("the run recorded no trace")?;
    let [prefill, decode] = trace.phase_lower_bounds()?;
    trace.write(&args.out)?;
    eprintln!(
        "wrote {} ({} events; lower bound: prefill {prefill} bytes, decode {decode} bytes)",
        args.out.display(),
        trace.events.len()
    );
    Ok(())
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let trace = Trace::read(&args.trace)?;
    let mut options = PoolOptions::from_env()?;
    if let Some(bytes) = args.max_retained_bytes {
        options.max_retained_bytes = bytes;
    }
    if let Some(cap) = args.per_class_cap {
        options.per_class_cap = cap;
    }
    let names = strategies(&args.pools, &options, Device::Cpu)?;
    let lower_bound = trace.lower_bound()?;
    let [prefill, decode] = trace.phase_lower_bounds()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} acquires; lower bound {lower_bound} bytes (prefill {prefill}, decode {decode})",
        args.trace.display(),
        trace.acquires()
    )?;
    writeln!(
        out,
        "per phase: the largest step window over its warm steps (each step after the phase's first), as compare reports them"
    )?;
    writeln!(
        out,
        "{:<13} {:>13} {:>13} {:>7} {:>13} {:>13} {:>7} {:>8} {:>7} {:>5}",
        "strategy",
        "prefill peak",
        "lower bnd",
        "ratio",
        "decode peak",
        "lower bnd",
        "ratio",
        "ns/op",
        "misses",
        "dev"
    )?;
    let mut rows = Vec::new();
    for name in names {
        let pool = Pool::with_strategy(&name, HostMemory, &options)?;
        let report = trace.replay(&pool)?;
        let [p, d] = report.phases;
        writeln!(
            out,
            "{:<13} {:>13} {:>13} {:>7.3} {:>13} {:>13} {:>7.3} {:>8.1} {:>7} {:>5}",
            name,
            p.peak_reserved_bytes,
            p.lower_bound_bytes,
            p.ratio().unwrap_or(0.0),
            d.peak_reserved_bytes,
            d.lower_bound_bytes,
            d.ratio().unwrap_or(0.0),
            report.ns_per_op(),
            report.stats.misses,
            p.deviations + d.deviations
        )?;
        let phase = |f: &scratchpad::PhaseReplay| {
            serde_json::json!({
                "steps": f.steps,
                "peak_reserved_bytes": f.peak_reserved_bytes,
                "lower_bound_bytes": f.lower_bound_bytes,
                "peak_over_lower_bound": f.ratio(),
                "deviations": f.deviations,
            })
        };
        rows.push(serde_json::json!({
            "strategy": name,
            "prefill": phase(&p),
            "decode": phase(&d),
            "ns_per_op": report.ns_per_op(),
            "ops": report.ops,
            "misses": report.stats.misses,
            "peak_reserved_bytes_overall": report.stats.peak_reserved_bytes,
        }));
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "trace": args.trace.display().to_string(),
            "acquires": trace.acquires(),
            "lower_bound_bytes": lower_bound,
            "phase_lower_bound_bytes": { "prefill": prefill, "decode": decode },
            "strategies": rows,
        });
        write_whole(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

fn run_synth(args: SynthArgs) -> anyhow::Result<()> {
    let config = synthetic::preset(&args.preset)?;
    let bytes = synthetic::file_bytes(&config, args.seed)?;
    write_whole(&args.out, &bytes)?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

/// Writes through a temporary file beside `path` and renames it into place,
/// so a failure leaves no half-written file.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// What `generate` runs, on whichever backend.
struct Run<'a> {
    tokenizer: Option<&'a Tokenizer>,
    sampler: &'a mut Sampler,
    prompt: &'a [u32],
    steps: usize,
}

impl Run<'_> {
    fn on(self, mut transformer: Transformer) -> anyhow::Result<scratchpad_model::Generation> {
        if self.steps > 0 {
            transformer.reserve(self.prompt.len().min(self.steps), self.steps - 1)?;
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let generation = generate(
            &mut transformer,
            self.tokenizer,
            self.sampler,
            self.prompt,
            self.steps,
            &mut out,
        )?;
        out.flush().context("writing to stdout")?;
        Ok(generation)
    }
}
