//! Teacher throughput benchmark: single-stream and batched (continuous batching) generated
//! tokens/s of the SmolLM2 teacher on realistic chat prompts, and each run's peak RSS.
//!
//! ```text
//! bench_teacher                       # the table: 1, 32 and 64 slots
//! bench_teacher --slots 1,16,32 --new-tokens 256
//! bench_teacher --eos                 # stop at <|im_end|> as real generation does
//! SYNTHLM_BENCH_LOGPROBS=1 bench_teacher  # also sum token log-probabilities (as generation does)
//! bench_teacher check                 # our logits vs candle's quantized_llama, and a sample
//! bench_teacher kernel                # GFLOP/s of the packed matmul on the model's shapes
//! ```
//!
//! Each measurement runs in a child process (`bench_teacher worker ...`) so its peak RSS
//! (VmHWM) is its own; tokens/s counts generated tokens over the run's wall time (prefill
//! included, model loading excluded). By default generation ignores `<|im_end|>` so every
//! request produces exactly its `max_new_tokens` (from N/2 to 3N/2 around N = --new-tokens,
//! mean N): the work is fixed and figures compare between runs. With `--eos` requests end
//! where the model ends its answer, so slots free and refill at different steps.

use anyhow::{Context, Result};
use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use synthlm::data::document::{Message, Role};
use synthlm::generate::{Request, RunOptions, Sampling, Teacher};

const PROMPTS: &[&str] = &[
    "Write a short story for young children about a rabbit who learns to share.",
    "Explain why the sky is blue in simple terms.",
    "What are three tips for staying focused while studying?",
    "Write a poem about the ocean at night.",
    "How does photosynthesis work? Explain it to a ten-year-old.",
    "Give me a recipe for a simple vegetable soup.",
    "What is the difference between weather and climate?",
    "Write a friendly email inviting a colleague to a team lunch on Friday.",
    "Describe the water cycle step by step.",
    "Tell me a story about a robot who wants to become a gardener.",
    "Why do we have seasons on Earth?",
    "Write a Python function that reverses a string, and explain how it works.",
    "What are the main causes of the French Revolution?",
    "Explain what a prime number is, with examples.",
    "Write a dialogue between a cat and a dog about who is the better pet.",
    "How can I improve my sleep habits?",
];

#[derive(Serialize, Deserialize)]
struct Figure {
    slots: usize,
    requests: usize,
    generated_tokens: usize,
    prompt_tokens: usize,
    seconds: f64,
    tokens_per_s: f64,
    load_seconds: f64,
    peak_rss_mb: f64,
}

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn worker(slots: usize, requests: usize, new_tokens: usize, eos: bool) -> Result<Figure> {
    let t0 = std::time::Instant::now();
    let teacher = Teacher::load()?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let mut reqs = Vec::new();
    for i in 0..requests {
        let prompt =
            teacher.chat_prompt(&[Message::new(Role::User, PROMPTS[i % PROMPTS.len()])])?;
        let max_new_tokens = new_tokens / 2 + (i * 7919 % (new_tokens + 1));
        reqs.push(Request {
            logprobs: std::env::var_os("SYNTHLM_BENCH_LOGPROBS").is_some(),
            id: i as u64,
            prompt,
            max_new_tokens,
            sampling: Sampling {
                temperature: 0.7,
                top_k: 0,
                top_p: 0.9,
                repetition_penalty: 1.1,
                no_repeat_ngram: 0,
                repeat_last_n: 0,
            },
            stop: if eos { vec![teacher.eos] } else { vec![] },
            seed: i as u64,
        });
    }
    let opts = RunOptions {
        slots,
        max_seq_len: 1024,
        ..RunOptions::default()
    };
    let stats = teacher.engine.run(reqs, &opts, |_| Ok(()))?;
    Ok(Figure {
        slots,
        requests,
        generated_tokens: stats.generated_tokens,
        prompt_tokens: stats.prompt_tokens,
        seconds: stats.seconds,
        tokens_per_s: stats.tokens_per_second(),
        load_seconds,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// Our logits vs candle's `quantized_llama` (which multiplies Q4_1 weights by Q8-quantized
/// activations, so some difference is expected) on a chat prompt; then a greedy sample.
fn check() -> Result<()> {
    let teacher = Teacher::load()?;
    println!(
        "teacher {} sha256 {}",
        teacher.path.display(),
        teacher.sha256
    );
    println!("{:?}", teacher.engine.config());
    println!(
        "weights: {:.0} MB f32",
        teacher.engine.weight_bytes() as f64 / 1e6
    );
    let prompt = teacher.chat_prompt(&[Message::new(
        Role::User,
        "Write a short story about a brave little mouse.",
    )])?;
    let ours = teacher.engine.logits(&prompt)?;
    let mut f = std::fs::File::open(&teacher.path)?;
    let content = Content::read(&mut f)?;
    let mut reference = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut f,
        &Device::Cpu,
    )?;
    let input = Tensor::new(prompt.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    let theirs: Vec<f32> = reference.forward(&input, 0)?.squeeze(0)?.to_vec1()?;
    let max_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = theirs.iter().map(|x| x.abs()).fold(0f32, f32::max);
    let argmax = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    println!(
        "logits vs candle ({}): max |diff| {max_diff:.4} (max |logit| {scale:.2}); argmax ours {} candle {}",
        if std::env::var("CANDLE_DEQUANTIZE_ALL").is_ok() { "candle dequantized to f32" } else { "candle Q4_1 x Q8_1" },
        argmax(&ours),
        argmax(&theirs)
    );
    let req = Request {
        logprobs: std::env::var_os("SYNTHLM_BENCH_LOGPROBS").is_some(),
        id: 0,
        prompt,
        max_new_tokens: 200,
        sampling: Sampling::greedy(),
        stop: vec![teacher.eos],
        seed: 0,
    };
    let mut out = None;
    teacher.engine.run(
        [req],
        &RunOptions {
            slots: 1,
            ..Default::default()
        },
        |c| {
            out = Some(c);
            Ok(())
        },
    )?;
    let c = out.context("no completion")?;
    println!(
        "greedy ({:?}):\n{}",
        c.stop_reason,
        teacher.decode(&c.tokens)?
    );
    Ok(())
}

/// GFLOP/s of the packed matmul on the teacher's shapes (rows = batch size).
fn kernel() -> Result<()> {
    use synthlm::generate::kernels::{matmul, PackedMatrix};
    println!("| rows | n x k | GFLOP/s |");
    println!("|---|---|---|");
    for &(n, k) in &[
        (960, 576),
        (576, 576),
        (3072, 576),
        (576, 1536),
        (49152, 576),
    ] {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.01)
            .collect();
        let pw = PackedMatrix::pack(&w, n, k);
        for &rows in &[1usize, 8, 32, 64, 256] {
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let mut y = vec![0f32; rows * n];
            let flop = 2.0 * (rows * n * k) as f64;
            let reps = ((2e10 / flop) as usize).clamp(3, 20_000);
            matmul(&x, rows, &pw, &mut y);
            let t = std::time::Instant::now();
            for _ in 0..reps {
                matmul(&x, rows, &pw, &mut y);
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "| {rows} | {n} x {k} | {:.1} |",
                flop * reps as f64 / s / 1e9
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    match args.get(1).map(String::as_str) {
        Some("check") => return check(),
        Some("kernel") => return kernel(),
        Some("worker") => {
            let fig = worker(
                args[2].parse()?,
                args[3].parse()?,
                args[4].parse()?,
                args.get(5).is_some_and(|a| a == "eos"),
            )?;
            println!("{}", serde_json::to_string(&fig)?);
            return Ok(());
        }
        _ => {}
    }
    let new_tokens: usize = flag("--new-tokens", "128").parse()?;
    let per_slot: usize = flag("--requests-per-slot", "3").parse()?;
    let eos = args.iter().any(|a| a == "--eos");
    let exe = std::env::current_exe()?;
    println!("| slots | requests | generated tokens | seconds | tokens/s | peak RSS (MB) |");
    println!("|---|---|---|---|---|---|");
    for slots in flag("--slots", "1,32,64").split(',') {
        let slots: usize = slots.parse()?;
        let requests = if slots == 1 { 2 } else { slots * per_slot };
        let args = [
            "worker".to_string(),
            slots.to_string(),
            requests.to_string(),
            new_tokens.to_string(),
            (if eos { "eos" } else { "fixed" }).to_string(),
        ];
        let fig: Figure = synthlm::bench::run_json_child(&exe, &args)?;
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.0} |",
            fig.slots,
            fig.requests,
            fig.generated_tokens,
            fig.seconds,
            fig.tokens_per_s,
            fig.peak_rss_mb
        );
    }
    Ok(())
}
