//! The `scratchpad` binary: `generate` text with a llama2.c model (run.c's
//! flags and output) and `synth` a synthetic checkpoint.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use scratchpad::{HostMemory, Pool, PoolOptions};
use scratchpad_model::{
    BOS, Checkpoint, CpuBackend, Sampler, Tokenizer, Transformer, generate, synthetic,
};

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
    /// Write a synthetic checkpoint.
    Synth(SynthArgs),
}

#[derive(Args)]
struct ModelArgs {
    /// A llama2.c checkpoint.
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<PathBuf>,
    /// A built-in synthetic model: synth-15m (the default) or synth-260k.
    #[arg(long)]
    synthetic: Option<String>,
}

impl ModelArgs {
    fn load(&self) -> anyhow::Result<Checkpoint> {
        Ok(match (&self.model, &self.synthetic) {
            (Some(path), _) => Checkpoint::open(path)?,
            (None, name) => synthetic::checkpoint(
                name.as_deref().unwrap_or("synth-15m"),
                synthetic::DEFAULT_SEED,
            )?,
        })
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
    /// Scratch pool strategy: noop, size-classed, best-fit, arena, planned, workspace.
    #[arg(long, default_value = "planned")]
    pool: String,
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
    let result = match cli.command {
        Command::Generate(args) => run_generate(args),
        Command::Synth(args) => run_synth(args),
    };
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
    let scratch = Pool::with_strategy(&args.pool, HostMemory, &options)?;
    let model = Arc::new(args.model.load()?);
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
        (Some(t), prompt) => t.encode(prompt.as_deref().unwrap_or(""), true, false),
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
        let mut transformer = Transformer::new(CpuBackend::new(model, scratch));
        if steps > 0 {
            transformer.reserve(prompt.len().min(steps), steps - 1)?;
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let generation = generate(
            &mut transformer,
            tokenizer.as_ref(),
            &mut sampler,
            &prompt,
            steps,
            &mut out,
        )?;
        out.flush().context("writing to stdout")?;
        Ok(generation)
    })?;
    if let Some(rate) = generation.tokens_per_second {
        eprintln!("achieved tok/s: {rate:.6}");
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
