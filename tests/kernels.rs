//! The fused CPU kernels against the same maths built from plain differentiable candle ops
//! (`kernels::reference`): forward values and every gradient, on random inputs with odd sizes;
//! plus determinism (bit-identical gradients run to run and for 1, 2 or 3 threads) and the
//! guarantee that every input receives a gradient.
//!
//! Run it with `RAYON_NUM_THREADS=1` and `=2` as well as the default.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use synthlm::model::kernels::{self, reference};

/// Relative tolerance, against the largest magnitude of the reference tensor.
const TOL: f32 = 1e-4;

/// `offset + scale · U(-1, 1)`, reproducible from `seed`.
fn uniform(seed: u64, dims: &[usize], scale: f32, offset: f32) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| offset + scale * rng.gen_range(-1.0f32..1.0))
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn targets(seed: u64, n: usize, vocab: usize) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<u32> = (0..n).map(|_| rng.gen_range(0..vocab as u32)).collect();
    Tensor::from_vec(v, n, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// max |a - b| / max |b|.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let (a, b) = (flat(a), flat(b));
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff.is_finite(), "non-finite values");
    diff / scale
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    let e = rel_err(got, want);
    assert!(e <= TOL, "{what}: relative error {e:e} > {TOL:e}");
}

/// Forward `f` on fresh `Var`s made from `inputs`, then backward of `Σ out ⊙ r` with a fixed
/// random `r` (so that every output element gets its own upstream gradient). Returns the output
/// and the gradient of each input.
fn fwd_bwd(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts).unwrap();
    let r = uniform(999, out.dims(), 1.0, 0.5);
    let grads = out.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let gs = vars
        .iter()
        .enumerate()
        .map(|(i, v)| {
            grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("input {i} received no gradient"))
                .clone()
        })
        .collect();
    (out, gs)
}

/// The fused kernel and the reference agree on the output and on every gradient, and every
/// gradient is non-zero.
fn check_against_reference(
    name: &str,
    fused: impl Fn(&[Tensor]) -> Result<Tensor>,
    refr: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
) {
    let (out, grads) = fwd_bwd(&fused, inputs);
    let (want, want_grads) = fwd_bwd(&refr, inputs);
    assert_close(&out, &want, &format!("{name} forward"));
    for (i, (g, w)) in grads.iter().zip(&want_grads).enumerate() {
        assert_eq!(
            g.dims(),
            inputs[i].dims(),
            "{name}: gradient {i} has the wrong shape"
        );
        assert_close(g, w, &format!("{name} gradient of input {i}"));
        assert!(
            flat(g).iter().any(|&x| x != 0.0),
            "{name}: gradient {i} is all zeros"
        );
    }
}

/// Output and gradients as raw bits, computed in a rayon pool of `threads` threads.
fn bits_with_threads(
    threads: usize,
    f: &(dyn Fn(&[Tensor]) -> Result<Tensor> + Sync),
    inputs: &[Tensor],
) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let (out, grads) = fwd_bwd(f, inputs);
        std::iter::once(out)
            .chain(grads)
            .map(|t| flat(&t).into_iter().map(f32::to_bits).collect())
            .collect()
    })
}

/// Bit-identical output and gradients twice in a row, and for 1, 2 and 3 threads.
fn check_deterministic(
    name: &str,
    f: &(dyn Fn(&[Tensor]) -> Result<Tensor> + Sync),
    inputs: &[Tensor],
) {
    let first = bits_with_threads(2, f, inputs);
    assert_eq!(
        first,
        bits_with_threads(2, f, inputs),
        "{name}: two runs differ"
    );
    assert_eq!(
        first,
        bits_with_threads(1, f, inputs),
        "{name}: 1 thread differs from 2"
    );
    assert_eq!(
        first,
        bits_with_threads(3, f, inputs),
        "{name}: 3 threads differ from 2"
    );
}

// ---------------------------------------------------------------------------------------------
// Layer norm
// ---------------------------------------------------------------------------------------------

const EPS: f64 = 1e-5;

fn ln_inputs(rows: &[usize], d: usize) -> Vec<Tensor> {
    let dims: Vec<usize> = rows.iter().copied().chain([d]).collect();
    vec![
        uniform(1, &dims, 3.0, 1.5),
        uniform(2, &[d], 0.5, 1.0),
        uniform(3, &[d], 0.5, 0.0),
    ]
}

fn ln_fused(t: &[Tensor]) -> Result<Tensor> {
    kernels::layer_norm(&t[0], &t[1], &t[2], EPS)
}

fn ln_ref(t: &[Tensor]) -> Result<Tensor> {
    reference::layer_norm(&t[0], &t[1], &t[2], EPS)
}

#[test]
fn layer_norm_matches_reference() {
    check_against_reference("layer_norm", ln_fused, ln_ref, &ln_inputs(&[2, 7], 12));
    // 150 rows: several fixed chunks of rows for the dweight/dbias sums, the last one partial.
    check_against_reference(
        "layer_norm 150 rows",
        ln_fused,
        ln_ref,
        &ln_inputs(&[3, 50], 20),
    );
    check_against_reference("layer_norm one row", ln_fused, ln_ref, &ln_inputs(&[1], 33));
}

#[test]
fn layer_norm_forward_matches_candle_nn() {
    let t = ln_inputs(&[2, 7], 12);
    let ln = candle_nn::LayerNorm::new(t[1].clone(), t[2].clone(), EPS);
    let want = candle_core::Module::forward(&ln, &t[0]).unwrap();
    assert_close(&ln_fused(&t).unwrap(), &want, "layer_norm vs candle_nn");
}

#[test]
fn layer_norm_accepts_non_contiguous_input() {
    let t = ln_inputs(&[12], 7); // transpose [12, 7] -> [7, 12]
    let x = t[0].t().unwrap();
    let w = uniform(4, &[12], 0.5, 1.0);
    let b = uniform(5, &[12], 0.5, 0.0);
    let inputs = [x, w, b];
    assert!(!inputs[0].is_contiguous());
    check_against_reference("layer_norm strided", ln_fused, ln_ref, &inputs);
}

#[test]
fn layer_norm_is_deterministic() {
    check_deterministic("layer_norm", &ln_fused, &ln_inputs(&[3, 50], 20));
}

// ---------------------------------------------------------------------------------------------
// GELU
// ---------------------------------------------------------------------------------------------

fn gelu_fused(t: &[Tensor]) -> Result<Tensor> {
    kernels::gelu(&t[0])
}

fn gelu_ref(t: &[Tensor]) -> Result<Tensor> {
    reference::gelu(&t[0])
}

#[test]
fn gelu_matches_reference() {
    // ±6 covers the saturated tails as well as the curved middle.
    let x = [uniform(10, &[2, 7, 12], 6.0, 0.0)];
    check_against_reference("gelu", gelu_fused, gelu_ref, &x);
    // candle's own Tensor::gelu is the same function with its own backward formula.
    check_against_reference("gelu vs candle", gelu_fused, |t| t[0].gelu(), &x);
    // More elements than one rayon task takes.
    let x = [uniform(11, &[5, 7001], 4.0, 0.0)];
    check_against_reference("gelu large", gelu_fused, gelu_ref, &x);
}

fn bias_gelu_fused(t: &[Tensor]) -> Result<Tensor> {
    kernels::bias_gelu(&t[0], &t[1])
}

fn bias_gelu_ref(t: &[Tensor]) -> Result<Tensor> {
    reference::bias_gelu(&t[0], &t[1])
}

#[test]
fn bias_gelu_matches_reference() {
    let inputs = [
        uniform(12, &[2, 7, 12], 3.0, 0.0),
        uniform(13, &[12], 1.0, 0.0),
    ];
    check_against_reference("bias_gelu", bias_gelu_fused, bias_gelu_ref, &inputs);
    let inputs = [
        uniform(14, &[3, 50, 20], 3.0, 0.0),
        uniform(15, &[20], 1.0, 0.0),
    ];
    check_against_reference(
        "bias_gelu 150 rows",
        bias_gelu_fused,
        bias_gelu_ref,
        &inputs,
    );
}

#[test]
fn gelu_is_deterministic() {
    check_deterministic("gelu", &gelu_fused, &[uniform(11, &[5, 7001], 4.0, 0.0)]);
    let inputs = [
        uniform(14, &[3, 50, 20], 3.0, 0.0),
        uniform(15, &[20], 1.0, 0.0),
    ];
    check_deterministic("bias_gelu", &bias_gelu_fused, &inputs);
}

// ---------------------------------------------------------------------------------------------
// Bias add (with or without a residual)
// ---------------------------------------------------------------------------------------------

fn bits(ts: &[Tensor]) -> Vec<Vec<u32>> {
    ts.iter()
        .map(|t| flat(t).into_iter().map(f32::to_bits).collect())
        .collect()
}

/// Bit for bit what candle's `broadcast_add` (and `+`) give, forward and backward: the runs
/// trained before the fused kernel reproduce only if it is.
#[test]
fn bias_add_is_candles_arithmetic_to_the_bit() {
    // 301 rows: more than one task of rows; 37 columns: not a multiple of the column tasks.
    // (16, 16384): the position embeddings' shape at mini-1m, a batch of rows of T·d.
    for (n, d) in [(301, 37), (2048, 128), (5, 3), (16, 16384)] {
        let inputs = [
            uniform(40 + n as u64, &[n, d], 2.0, 0.0),
            uniform(41, &[n, d], 3.0, 0.5),
            uniform(42, &[d], 1.0, 0.0),
        ];
        let plain = fwd_bwd(|t| kernels::bias_add(&t[0], &t[1], None), &inputs[1..]);
        let candle = fwd_bwd(|t| t[0].broadcast_add(&t[1]), &inputs[1..]);
        let name = format!("bias_add [{n}, {d}]");
        assert_eq!(bits(&[plain.0]), bits(&[candle.0]), "{name} forward");
        assert_eq!(bits(&plain.1), bits(&candle.1), "{name} gradients");

        let fused = fwd_bwd(|t| kernels::bias_add(&t[1], &t[2], Some(&t[0])), &inputs);
        let candle = fwd_bwd(|t| &t[0] + t[1].broadcast_add(&t[2])?, &inputs);
        assert_eq!(
            bits(&[fused.0]),
            bits(&[candle.0]),
            "{name} residual forward"
        );
        assert_eq!(bits(&fused.1), bits(&candle.1), "{name} residual gradients");
    }
}

#[test]
fn bias_add_is_deterministic_and_checks_shapes() {
    let inputs = [
        uniform(43, &[300, 40], 2.0, 0.0),
        uniform(44, &[300, 40], 2.0, 0.0),
        uniform(45, &[40], 1.0, 0.0),
    ];
    let f = |t: &[Tensor]| kernels::bias_add(&t[1], &t[2], Some(&t[0]));
    check_deterministic("residual bias_add", &f, &inputs);
    let short_bias = uniform(46, &[39], 1.0, 0.0);
    let err = kernels::bias_add(&inputs[1], &short_bias, None).unwrap_err();
    assert!(err.to_string().contains("bias has 39 elements"), "{err}");
    let row_bias = uniform(48, &[1, 40], 1.0, 0.0);
    let err = kernels::bias_add(&inputs[1], &row_bias, None).unwrap_err();
    assert!(err.to_string().contains("one-dimensional"), "{err}");
    let other_rows = uniform(47, &[299, 40], 1.0, 0.0);
    let err = kernels::bias_add(&inputs[1], &inputs[2], Some(&other_rows)).unwrap_err();
    assert!(err.to_string().contains("differ in shape"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Causal attention
// ---------------------------------------------------------------------------------------------

fn attention_case(b: usize, t: usize, d: usize, n_head: usize) {
    let qkv = [uniform(20 + t as u64, &[b, t, 3 * d], 2.0, 0.0)];
    let name = format!("causal_attention B={b} T={t} d={d} heads={n_head}");
    check_against_reference(
        &name,
        |x| kernels::causal_attention(&x[0], n_head),
        |x| reference::causal_attention(&x[0], n_head),
        &qkv,
    );
}

#[test]
fn causal_attention_matches_reference() {
    attention_case(2, 7, 12, 3);
    attention_case(1, 1, 4, 2); // a single position attends only to itself
    attention_case(2, 64, 8, 1); // exactly one block of queries
    attention_case(1, 150, 16, 2); // three blocks, the last one partial
}

#[test]
fn causal_attention_is_causal() {
    // Changing the last position must leave every earlier output untouched.
    let qkv = uniform(30, &[1, 9, 24], 1.0, 0.0);
    let y1 = kernels::causal_attention(&qkv, 2).unwrap();
    let bump = Tensor::zeros((1, 8, 24), DType::F32, &Device::Cpu).unwrap();
    let bump = Tensor::cat(
        &[
            bump,
            Tensor::ones((1, 1, 24), DType::F32, &Device::Cpu).unwrap(),
        ],
        1,
    )
    .unwrap();
    let y2 = kernels::causal_attention(&(qkv + bump).unwrap(), 2).unwrap();
    let (a, b) = (y1.narrow(1, 0, 8).unwrap(), y2.narrow(1, 0, 8).unwrap());
    assert_eq!(flat(&a), flat(&b));
    assert_ne!(
        flat(&y1.narrow(1, 8, 1).unwrap()),
        flat(&y2.narrow(1, 8, 1).unwrap())
    );
}

#[test]
fn causal_attention_rejects_bad_head_count() {
    let qkv = uniform(31, &[1, 4, 24], 1.0, 0.0);
    assert!(kernels::causal_attention(&qkv, 3).is_err()); // d = 8 is not divisible by 3
    assert!(kernels::causal_attention(&qkv, 0).is_err());
}

#[test]
fn causal_attention_is_deterministic() {
    let f = |x: &[Tensor]| kernels::causal_attention(&x[0], 2);
    check_deterministic(
        "causal_attention",
        &f,
        &[uniform(32, &[2, 150, 48], 2.0, 0.0)],
    );
}

/// The rows form is the 3-D kernel to the bit, forward and backward, in the model's layout.
#[test]
fn causal_attention_rows_is_the_kernel_on_rows() {
    let (b, t, c3) = (3, 70, 48);
    let qkv = [uniform(33, &[b * t, c3], 2.0, 0.0)];
    let rows = fwd_bwd(|x| kernels::causal_attention_rows(&x[0], t, 2), &qkv);
    let batched = fwd_bwd(
        |x| kernels::causal_attention(&x[0].reshape((b, t, c3))?, 2)?.reshape((b * t, c3 / 3)),
        &qkv,
    );
    assert_eq!(rows.0.dims(), &[b * t, c3 / 3]);
    assert_eq!(bits(&[rows.0]), bits(&[batched.0]), "forward");
    assert_eq!(bits(&rows.1), bits(&batched.1), "gradient");
    let err = kernels::causal_attention_rows(&qkv[0], 71, 2).unwrap_err();
    assert!(
        err.to_string().contains("not whole sequences of 71"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy
// ---------------------------------------------------------------------------------------------

#[test]
fn cross_entropy_matches_reference() {
    for (scale, seed) in [(3.0, 40), (60.0, 41)] {
        // 60: large logits, where a softmax without the max shift would overflow.
        let logits = [uniform(seed, &[14, 37], scale, 0.0)];
        let tg = targets(seed, 14, 37);
        check_against_reference(
            &format!("cross_entropy logits ±{scale}"),
            |x| kernels::cross_entropy(&x[0], &tg),
            |x| reference::cross_entropy(&x[0], &tg),
            &logits,
        );
        // candle_nn's loss (differentiable, from log_softmax) agrees too.
        check_against_reference(
            "cross_entropy vs candle_nn",
            |x| kernels::cross_entropy(&x[0], &tg),
            |x| candle_nn::loss::cross_entropy(&x[0], &tg),
            &logits,
        );
        // i64 targets give the same answer.
        let tg64 = tg.to_dtype(DType::I64).unwrap();
        let a = kernels::cross_entropy(&logits[0], &tg).unwrap();
        let b = kernels::cross_entropy(&logits[0], &tg64).unwrap();
        assert_eq!(a.to_scalar::<f32>().unwrap(), b.to_scalar::<f32>().unwrap());
    }
}

#[test]
fn per_row_nll_matches_reference() {
    let logits = uniform(42, &[14, 37], 5.0, 0.0);
    let tg = targets(42, 14, 37);
    let got = kernels::per_row_nll(&logits, &tg).unwrap();
    assert_eq!(got.dims(), &[14]);
    assert_close(
        &got,
        &reference::per_row_nll(&logits, &tg).unwrap(),
        "per_row_nll",
    );
    let mean = got.mean_all().unwrap().to_scalar::<f32>().unwrap();
    let loss = kernels::cross_entropy(&logits, &tg)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((mean - loss).abs() <= 1e-5 * loss.abs());
}

#[test]
fn cross_entropy_rejects_bad_targets() {
    let logits = uniform(43, &[3, 5], 1.0, 0.0);
    let bad = Tensor::from_vec(vec![0u32, 5, 1], 3, &Device::Cpu).unwrap();
    assert!(kernels::cross_entropy(&logits, &bad).is_err());
    let short = Tensor::from_vec(vec![0u32, 1], 2, &Device::Cpu).unwrap();
    assert!(kernels::cross_entropy(&logits, &short).is_err());
    let neg = Tensor::from_vec(vec![0i64, -1, 1], 3, &Device::Cpu).unwrap();
    assert!(kernels::per_row_nll(&logits, &neg).is_err());
}

#[test]
fn cross_entropy_is_deterministic() {
    let tg = targets(44, 300, 37);
    let f = |x: &[Tensor]| kernels::cross_entropy(&x[0], &tg);
    check_deterministic("cross_entropy", &f, &[uniform(44, &[300, 37], 4.0, 0.0)]);
}

// ---------------------------------------------------------------------------------------------
// A whole block, end to end
// ---------------------------------------------------------------------------------------------

/// A tiny GPT-2 block plus loss, built once from the fused kernels and once from the
/// references: the loss and the gradient of every parameter agree, so the kernels compose
/// (gradients accumulate correctly where a tensor feeds several ops, e.g. the residual stream).
#[test]
fn gpt_block_gradients_match_reference() {
    let (b, t, d, n_head, vocab) = (2, 7, 12, 3, 37);
    let inputs = vec![
        uniform(50, &[b, t, d], 1.0, 0.0),   // 0: embeddings
        uniform(51, &[d], 0.2, 1.0),         // 1: ln1 weight
        uniform(52, &[d], 0.2, 0.0),         // 2: ln1 bias
        uniform(53, &[d, 3 * d], 0.3, 0.0),  // 3: qkv weight
        uniform(54, &[d, d], 0.3, 0.0),      // 4: attention projection
        uniform(55, &[d], 0.2, 1.0),         // 5: ln2 weight
        uniform(56, &[d], 0.2, 0.0),         // 6: ln2 bias
        uniform(57, &[d, 4 * d], 0.3, 0.0),  // 7: fc weight
        uniform(58, &[4 * d], 0.2, 0.0),     // 8: fc bias
        uniform(59, &[4 * d, d], 0.15, 0.0), // 9: fc projection
        uniform(60, &[d, vocab], 0.3, 0.0),  // 10: lm head
    ];
    let tg = targets(61, b * t, vocab);
    let block = |p: &[Tensor], fused: bool| -> Result<Tensor> {
        let ln = |x: &Tensor, w: &Tensor, bb: &Tensor| {
            if fused {
                kernels::layer_norm(x, w, bb, EPS)
            } else {
                reference::layer_norm(x, w, bb, EPS)
            }
        };
        let x = &p[0];
        let h = ln(x, &p[1], &p[2])?;
        let qkv = h.broadcast_matmul(&p[3])?;
        let att = if fused {
            kernels::causal_attention(&qkv, n_head)?
        } else {
            reference::causal_attention(&qkv, n_head)?
        };
        let x = (x + att.broadcast_matmul(&p[4])?)?;
        let h = ln(&x, &p[5], &p[6])?.broadcast_matmul(&p[7])?;
        let h = if fused {
            kernels::bias_gelu(&h, &p[8])?
        } else {
            reference::bias_gelu(&h, &p[8])?
        };
        let x = (&x + h.broadcast_matmul(&p[9])?)?;
        let logits = x.broadcast_matmul(&p[10])?.reshape((b * t, vocab))?;
        if fused {
            kernels::cross_entropy(&logits, &tg)
        } else {
            reference::cross_entropy(&logits, &tg)
        }
    };
    check_against_reference(
        "gpt block",
        |p| block(p, true),
        |p| block(p, false),
        &inputs,
    );
}

/// The device path (`synthlm::model::device_ops`: candle's fused forward kernels with
/// closed-form backward passes, what a GPU runs) against the reference, forward and backward.
/// candle-nn's kernels also run on the CPU, so this is checked without a GPU.
#[test]
fn the_device_path_matches_reference() {
    use synthlm::model::device_ops;
    let ln = ln_inputs(&[5, 3], 24);
    check_against_reference(
        "device layer_norm",
        |t| device_ops::layer_norm(&t[0], &t[1], &t[2], 1e-5),
        ln_ref,
        &ln,
    );
    for (b, t, d, h) in [(2, 7, 12, 3), (1, 1, 4, 2), (1, 40, 16, 2)] {
        let qkv = [uniform(20 + t as u64, &[b, t, 3 * d], 2.0, 0.0)];
        check_against_reference(
            &format!("device causal_attention B={b} T={t}"),
            |x| device_ops::causal_attention(&x[0], h),
            |x| reference::causal_attention(&x[0], h),
            &qkv,
        );
    }
    let x = [uniform(7, &[6, 9], 3.0, 0.0)];
    check_against_reference(
        "device softmax",
        |t| device_ops::softmax_last_dim(&t[0]),
        |t| reference::softmax_last_dim(&t[0]),
        &x,
    );
    for scale in [1.0f32, 30.0] {
        let logits = [uniform(11, &[13, 50], scale, 0.0)];
        let tg = targets(12, 13, 50);
        // the loss is a scalar: fwd_bwd's random upstream weight is one number
        check_against_reference(
            &format!("device cross_entropy logits ±{scale}"),
            |x| device_ops::cross_entropy(&x[0], &tg),
            |x| reference::cross_entropy(&x[0], &tg),
            &logits,
        );
        let a = device_ops::per_row_nll(&logits[0], &tg).unwrap();
        let b = reference::per_row_nll(&logits[0], &tg).unwrap();
        assert_close(&a, &b, "device per_row_nll");
    }
}

/// LayerNorm on the device path with rows of a large mean (a residual stream can drift): the
/// one-pass variance E[x²] − mean² would cancel; the device path centres first.
#[test]
fn the_device_layer_norm_survives_a_large_mean() {
    let x = uniform(5, &[4, 64], 0.1, 1000.0);
    let w = uniform(6, &[64], 0.5, 1.0);
    let b = uniform(7, &[64], 0.5, 0.0);
    let got = synthlm::model::device_ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
    let want = reference::layer_norm(&x, &w, &b, 1e-5).unwrap();
    let e = rel_err(&got, &want);
    assert!(e < 1e-2, "relative error {e}");
    // the kernel on the raw rows, for contrast: this is the failure centring prevents
    let raw = candle_nn::ops::layer_norm(&x, &w, &b, 1e-5).unwrap();
    let e_raw = rel_err(&raw, &want);
    assert!(
        e_raw > 0.1,
        "the one-pass kernel no longer cancels ({e_raw}): centring may be unneeded"
    );
}
