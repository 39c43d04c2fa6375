//! The `scratchpad` binary: `generate` text with a llama2.c model (run.c's
//! flags and output), `compare` pool strategies on the same work, record a
//! `trace` and `replay` it through every strategy, and `synth` a synthetic
//! checkpoint.
#![forbid(unsafe_code)]

mod compare;
mod report;
mod svg;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scratchpad::{
    CountingAlloc, HostMemory, OutputPath, Phase, Pool, PoolOptions, STRATEGY_NAMES, ScratchError,
    Trace,
};
use scratchpad_model::{
    BOS, Checkpoint, CudaOptions, DeviceChoice, Engine, Matmul, Sampler, Team, Tokenizer,
    Transformer, check_memory, check_memory_copied, generate, synthetic,
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
    /// Prompt length (the prefill block) [default: 128].
    #[arg(long)]
    prompt_tokens: Option<usize>,
    /// Decode tokens after the prompt (greedy, not stopping at BOS) [default: 64].
    #[arg(long)]
    steps: Option<usize>,
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
                let prompt_tokens = self.prompt_tokens.unwrap_or(128);
                if prompt_tokens == 0 {
                    bail!("--prompt-tokens must be at least 1");
                }
                // Checked before the prompt is made: a huge count would
                // be allocated first.
                if prompt_tokens > config.seq_len {
                    bail!(
                        "--prompt-tokens {prompt_tokens} is beyond the model's context of {} positions",
                        config.seq_len
                    );
                }
                let mut state = self.seed.max(1);
                let vocab = config.vocab_size as u64;
                (0..prompt_tokens)
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
        let steps = self.steps.unwrap_or(64);
        if steps == 0 {
            bail!("--steps must be at least 1: the decode phase is never empty");
        }
        if prompt
            .len()
            .checked_add(steps)
            .is_none_or(|end| end > config.seq_len)
        {
            bail!(
                "a prompt of {} tokens and {} steps need more positions than the model's context of {}",
                prompt.len(),
                steps,
                config.seq_len
            );
        }
        Ok(compare::Workload {
            model,
            prompt,
            steps,
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
        // Each strategy once, in the order first given.
        let mut seen = std::collections::HashSet::new();
        pools
            .iter()
            .filter(|p| seen.insert(p.as_str()))
            .cloned()
            .collect()
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
    /// Prompts of varying lengths (--churn-lengths) through one pool,
    /// prefill only, on synth-260k unless --model or --synthetic says
    /// otherwise.
    Churn,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Strategies to compare, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', long_help = strategy_help("Strategies to compare, comma-separated [default: all]"))]
    pools: Vec<String>,
    /// Repetitions, strategies interleaved [default: 5].
    #[arg(long)]
    repeat: Option<usize>,
    /// Also print acquires and peak live bytes per call site.
    #[arg(long)]
    by_tag: bool,
    /// Print every column of the table (heap bytes, acquires, hit rate,
    /// page faults, device allocations, largest free extent, footprint,
    /// retained bytes, evictions; for churn, retained beside reserved), not
    /// just those that fit 120 columns.
    #[arg(long)]
    wide: bool,
    /// Write every figure and the run's settings as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report's charts as SVG files into this folder (created if
    /// missing).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write one self-contained HTML report (the table, the charts and
    /// each strategy's memory map; no network needed to view it).
    #[arg(long)]
    report: Option<PathBuf>,
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
    /// Also write the trace in Chrome's trace-event format (opens in
    /// Perfetto or chrome://tracing): leases as slices on a track per tag,
    /// live and held bytes under --pool as counter tracks.
    #[arg(long)]
    chrome: Option<PathBuf>,
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
    /// The most each strategy may hold from memory: does the trace fit in
    /// this many bytes? [default: no limit].
    #[arg(long)]
    reserve_limit: Option<usize>,
    /// Write every figure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ModelArgs {
    /// A llama2.c checkpoint.
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<PathBuf>,
    /// A built-in synthetic model, synth-15m or synth-260k [default: synth-15m].
    #[arg(long)]
    synthetic: Option<String>,
    /// The most bytes the run may hold (KV cache, activations, state,
    /// weights copied into memory) [default: the memory available now].
    #[arg(long)]
    max_memory: Option<usize>,
    /// Read --model's weights from the file's memory map instead of copying
    /// them into memory with huge pages (for a model larger than the
    /// memory allows; decode is slower and varies with the page cache).
    #[arg(long)]
    mmap: bool,
}

impl ModelArgs {
    /// The checkpoint, or the synthetic model asked for (`default` when
    /// neither is given), checked against the memory budget.
    fn load(&self, default: &str) -> anyhow::Result<Checkpoint> {
        let model = match (&self.model, &self.synthetic) {
            (Some(path), _) => {
                // Validated through the file's map; copied into memory
                // (huge pages) only after the budget, copy included, holds.
                let model = Checkpoint::open(path)?;
                check_memory_copied(&model, self.max_memory, !self.mmap).map_err(|e| {
                    if self.mmap {
                        anyhow::Error::from(e)
                    } else {
                        anyhow::anyhow!(
                            "{e} (--mmap reads the weights from the file's map instead of copying them)"
                        )
                    }
                })?;
                return Ok(if self.mmap {
                    model
                } else {
                    model.into_memory()
                });
            }
            (None, name) => {
                if self.mmap {
                    bail!("--mmap applies to --model files only");
                }
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
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line for an error and its causes, each cause once: a cause whose
/// text its outer message already holds (`path: <os error>` over the OS
/// error itself) is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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

/// Runs `f` on a worker of `pool` with a team of as many threads installed:
/// the decode step's kernels split on the team's spinning helpers (see
/// `Team`), the prefill's on the rayon pool.
fn install<R: Send>(
    pool: &rayon::ThreadPool,
    f: impl FnOnce() -> anyhow::Result<R> + Send,
) -> anyhow::Result<R> {
    pool.install(|| {
        let team = Team::new(pool.current_num_threads()).context("starting the worker threads")?;
        team.install(f)
    })
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
    // run.c's reading of -n: 0, or more than the context, means the
    // context.
    let steps = match args.steps {
        None => 256.min(config.seq_len),
        Some(0) => {
            eprintln!(
                "note: -n 0 runs the model's whole context of {} positions",
                config.seq_len
            );
            config.seq_len
        }
        Some(n) if n > config.seq_len => {
            eprintln!(
                "note: -n {n} is beyond the model's context; running {} positions",
                config.seq_len
            );
            config.seq_len
        }
        Some(n) => n,
    };
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
    if prompt.len() > steps {
        eprintln!(
            "note: the prompt is {} tokens (BOS included) but -n is {steps}: only its first {steps} run and nothing is generated",
            prompt.len()
        );
    } else if prompt.len() == steps && steps > 1 {
        eprintln!(
            "note: the prompt's {steps} tokens (BOS included) fill -n {steps}: nothing is generated"
        );
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let mut sampler = Sampler::new(config.vocab_size, args.temperature, args.top_p, seed);
    let pool = thread_pool(args.threads)?;
    let generation = install(&pool, move || -> anyhow::Result<_> {
        let run = Run {
            tokenizer: tokenizer.as_ref(),
            sampler: &mut sampler,
            prompt: &prompt,
            steps,
        };
        run.on(engine.transformer(&model, &args.pool, &options)?)
    })?;
    if generation.stopped_at_bos {
        eprintln!(
            "stopped at BOS after {} (of -n {steps})",
            plural(generation.positions, "token")
        );
    }
    if let Some(rate) = generation.tokens_per_second {
        eprintln!("achieved tok/s: {rate:.6}");
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    // Every output is checked before the work starts.
    let json_out = args.json.as_deref().map(OutputPath::check).transpose()?;
    let report_out = args.report.as_deref().map(OutputPath::check).transpose()?;
    let plot_dir = args
        .plot
        .as_deref()
        .map(report::PlotDir::check)
        .transpose()?;
    if args.scenario == Scenario::Churn {
        return run_churn(&args, json_out.as_ref());
    }
    let repeat = args.repeat.unwrap_or(5);
    if repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let options = args.workload.options()?;
    let names = strategies(&args.pools, &options, args.workload.device.device)?;
    let engine = args.workload.device.engine(&names)?;
    let pool = thread_pool(args.workload.threads)?;
    let threads = pool.current_num_threads();
    let stdout = std::io::stdout();
    let workload = args.workload.workload(args.plant_allocation)?;
    let progress = report::progress((repeat * names.len()) as u64);
    let runs = install(&pool, || -> anyhow::Result<Vec<Vec<compare::Run>>> {
        let mut runs: Vec<Vec<compare::Run>> =
            names.iter().map(|_| Vec::with_capacity(repeat)).collect();
        for _ in 0..repeat {
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
    let heading = format!(
        "{} ({} layers, dim {}, vocab {}): {} prompt tokens, {} decode steps, {}, {}, strategies interleaved",
        workload.model.source().display(),
        c.n_layers,
        c.dim,
        c.vocab_size,
        workload.prompt.len(),
        workload.steps,
        engine.describe(threads),
        plural(repeat, "repetition")
    );
    writeln!(out, "{heading}")?;
    if engine.pools_on_device() {
        writeln!(
            out,
            "pool figures are device memory (peak, lower bnd, footprint, retained; mem/t = cuMemAlloc calls per token); allocs/t and bytes/t are host heap"
        )?;
    }
    compare::print_table(&reports, args.wide, &mut out)?;
    let same = match names.len() {
        1 => format!("{} generated {}", names[0], plural(workload.steps, "token")),
        2 => format!(
            "both strategies generated the same {}",
            plural(workload.steps, "token")
        ),
        n => format!(
            "all {n} strategies generated the same {}",
            plural(workload.steps, "token")
        ),
    };
    writeln!(out, "\n{same}")?;
    if args.by_tag {
        compare::print_tags(&runs[0][0].tags, &reports, &mut out)?;
    }
    drop(out);
    if let Some(path) = &json_out {
        let mut json = report::compare_json(&workload, threads, repeat, &reports, &runs[0][0].tags);
        json["settings"]["device"] = engine.describe(threads).into();
        path.write(serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    if report_out.is_some() || plot_dir.is_some() {
        // The memory maps come from the trace of one more run, replayed
        // through each strategy over host memory.
        let mut trace = None;
        install(&pool, || {
            compare::run_once(&workload, &names[0], &engine, Some(&mut trace))
        })?;
        let trace = trace.context("the run recorded no trace")?;
        let maps = names
            .iter()
            .map(|name| -> anyhow::Result<report::StrategyMaps> {
                Ok(report::StrategyMaps {
                    strategy: name.clone(),
                    prefill: trace.memory_map(name, &workload.options, Phase::Prefill)?,
                    decode: trace.memory_map(name, &workload.options, Phase::Decode)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let charts = report::charts(&reports, &maps);
        if let Some(dir) = &plot_dir {
            dir.write(&charts)?;
        }
        if let Some(path) = &report_out {
            path.write(report::html(&heading, &reports, &charts, &maps).as_bytes())?;
            eprintln!("wrote {}", path.path().display());
        }
    }
    Ok(())
}

/// `compare --scenario churn`: prompts of varying lengths through one pool
/// per strategy. The default scenario's flags do not apply and are refused.
fn run_churn(args: &CompareArgs, json_out: Option<&OutputPath>) -> anyhow::Result<()> {
    let w = &args.workload;
    let refused = [
        ("--plot", args.plot.is_some()),
        ("--report", args.report.is_some()),
        ("--by-tag", args.by_tag),
        ("--repeat", args.repeat.is_some()),
        ("--steps", w.steps.is_some()),
        ("--prompt-tokens", w.prompt_tokens.is_some()),
        ("--prompt", w.prompt.is_some()),
        ("--tokenizer", w.tokenizer.is_some()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        bail!(
            "{flag} does not apply to --scenario churn (it runs each prompt of --churn-lengths once per strategy, prefill only, and prints one table; --json writes it)"
        );
    }
    if args.churn_lengths.is_empty() || args.churn_lengths.contains(&0) {
        bail!("--churn-lengths must be prompt lengths of at least 1 token each");
    }
    let options = w.options()?;
    let names = strategies(&args.pools, &options, w.device.device)?;
    let engine = w.device.engine(&names)?;
    let pool = thread_pool(w.threads)?;
    let threads = pool.current_num_threads();
    let model = Arc::new(w.model.load("synth-260k")?);
    let lengths = args.churn_lengths.clone();
    let rows = install(&pool, || {
        compare::churn(&model, &names, &options, &lengths, &engine)
    })?;
    compare::print_churn(&rows, &lengths, args.wide, &mut std::io::stdout().lock())?;
    if let Some(path) = json_out {
        let json = report::churn_json(&model, threads, &options, &rows);
        path.write(serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

fn run_trace(args: TraceArgs) -> anyhow::Result<()> {
    let out = OutputPath::check(&args.out)?;
    let chrome_out = args.chrome.as_deref().map(OutputPath::check).transpose()?;
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
    install(&pool, || {
        compare::run_once(&workload, &args.pool, &engine, Some(&mut trace))
    })?;
    let trace = trace.context("the run recorded no trace")?;
    let [prefill, decode] = trace.phase_lower_bounds()?;
    trace.write_to(&out)?;
    eprintln!(
        "wrote {} ({} events; lower bound: prefill {prefill} bytes, decode {decode} bytes)",
        args.out.display(),
        trace.events.len()
    );
    if let Some(chrome) = &chrome_out {
        let timeline = trace.timeline(&args.pool, &workload.options)?;
        chrome.write(serde_json::to_string(&report::chrome_trace(&timeline))?.as_bytes())?;
        eprintln!(
            "wrote {} (Chrome trace-event format: open it in https://ui.perfetto.dev or chrome://tracing)",
            chrome.path().display()
        );
    }
    Ok(())
}

fn run_replay(args: ReplayArgs) -> anyhow::Result<()> {
    let json_out = args.json.as_deref().map(OutputPath::check).transpose()?;
    let trace = Trace::read(&args.trace)?;
    let mut options = PoolOptions::from_env()?;
    if let Some(bytes) = args.max_retained_bytes {
        options.max_retained_bytes = bytes;
    }
    if let Some(cap) = args.per_class_cap {
        options.per_class_cap = cap;
    }
    if let Some(limit) = args.reserve_limit {
        options.reserve_limit = Some(limit);
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
        let report = trace.replay(&pool).map_err(|e| replay_error(&name, e))?;
        let [p, d] = report.phases;
        writeln!(
            out,
            "{:<13} {:>13} {:>13} {:>7} {:>13} {:>13} {:>7} {:>8.1} {:>7} {:>5}",
            name,
            p.peak_reserved_bytes,
            p.lower_bound_bytes,
            p.ratio().map_or("-".into(), |r| format!("{r:.3}")),
            d.peak_reserved_bytes,
            d.lower_bound_bytes,
            d.ratio().map_or("-".into(), |r| format!("{r:.3}")),
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
    if let Some(path) = &json_out {
        let json = serde_json::json!({
            "trace": args.trace.display().to_string(),
            "acquires": trace.acquires(),
            "lower_bound_bytes": lower_bound,
            "phase_lower_bound_bytes": { "prefill": prefill, "decode": decode },
            "strategies": rows,
        });
        path.write(serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

fn run_synth(args: SynthArgs) -> anyhow::Result<()> {
    let out = OutputPath::check(&args.out)?;
    let config = synthetic::preset(&args.preset)?;
    let bytes = synthetic::file_bytes(&config, args.seed)?;
    out.write(&bytes)?;
    eprintln!("wrote {} ({} bytes)", args.out.display(), bytes.len());
    Ok(())
}

/// A replay that failed: which strategy, and what it could not do (the
/// error's own advice is for API callers, not for a replay).
fn replay_error(strategy: &str, e: ScratchError) -> anyhow::Error {
    match e {
        ScratchError::OutOfMemory {
            memory,
            requested,
            reserved,
            limit,
        } => anyhow::anyhow!(
            "replaying through `{strategy}`: {memory} memory exhausted: {requested} bytes requested with {reserved} bytes already reserved{}",
            limit
                .map(|l| format!(" (limit {l} bytes)"))
                .unwrap_or_default()
        ),
        e => anyhow::anyhow!("replaying through `{strategy}`: {e}"),
    }
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

/// `1 token`, `2 tokens`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
