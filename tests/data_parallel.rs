//! Data parallelism without GPUs: N in-process replicas behind the `Collective` interface,
//! each reading its rows of the global batch, must train the model one process trains on the
//! whole batch (issue 13). NCCL replaces the in-process sum on GPUs; the averaging, bucketing
//! and data split tested here are the same code.

mod common;

use std::sync::Arc;
use synthlm::train::collective::{Collective, LocalReplicas};
use synthlm::train::{checkpoint, metrics, train, TrainOptions};

fn weights(run: &std::path::Path) -> std::collections::HashMap<String, Vec<f32>> {
    let dir = checkpoint::latest(run).unwrap().unwrap();
    let ck = checkpoint::load(&dir, &candle_core::Device::Cpu).unwrap();
    ck.model
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

fn losses(run: &std::path::Path) -> Vec<f64> {
    metrics::read_metrics(run)
        .unwrap()
        .into_iter()
        .map(|l| match l {
            metrics::MetricLine::Train { loss, .. } => loss,
            metrics::MetricLine::Eval { loss, .. } => -loss,
        })
        .collect()
}

#[test]
fn two_replicas_of_half_the_batch_train_what_one_process_trains_on_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.batch_size = 4;
    base.train.grad_accum = 2;
    base.train.max_steps = 12;
    base.train.ckpt_interval = 6;
    base.train.eval_interval = 6;
    base.train.log_interval = 2;

    let mut one = base.clone();
    one.out_dir = dir.path().join("one");
    train(&one, &TrainOptions::default()).unwrap();

    let mut dp = base.clone();
    dp.out_dir = dir.path().join("dp");
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = LocalReplicas::group(2)
            .into_iter()
            .map(|c| {
                let dp = &dp;
                s.spawn(move || {
                    let coll: Arc<dyn Collective> = Arc::new(c);
                    let opts = TrainOptions {
                        collective: Some(coll),
                        ..Default::default()
                    };
                    train(dp, &opts).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Rank 0 finishes with the summary; rank 1 finishes without writing one.
    assert!(outcomes.iter().all(|o| o.finished && o.steps_done == 12));
    assert!(outcomes[0].summary.is_some() && outcomes[1].summary.is_none());

    // Same weights up to float rounding: the sums over 2·T·B/2 rows and over T·B rows round
    // differently, nothing else differs.
    let (a, b) = (weights(&one.out_dir), weights(&dp.out_dir));
    let mut worst = 0f32;
    for (name, wa) in &a {
        let wb = &b[name];
        for (x, y) in wa.iter().zip(wb) {
            worst = worst.max((x - y).abs());
        }
    }
    println!("max |weight difference| after 12 steps: {worst:e}");
    assert!(
        worst < 1e-4,
        "replicas drifted from the single run: {worst}"
    );
    // The weights did move (the comparison is not between two untouched inits).
    let init = synthlm::model::Gpt::new(
        base.model.resolve(Some(300)).unwrap(),
        base.train.seed,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let w0 = init.tensors()["transformer.h.0.mlp.c_fc.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let moved = w0
        .iter()
        .zip(&a["transformer.h.0.mlp.c_fc.weight"])
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(moved > 100.0 * worst, "moved {moved}, drift {worst}");

    // One metrics file with the same lines (rank 1 wrote none), losses equal to rounding.
    let (la, lb) = (losses(&one.out_dir), losses(&dp.out_dir));
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert!((x - y).abs() < 1e-4, "loss {x} vs {y}");
    }
}

#[test]
fn a_global_batch_that_does_not_split_over_the_ranks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::training_fixture(dir.path(), 300);
    cfg.train.batch_size = 5;
    let group = LocalReplicas::group(2);
    let coll: Arc<dyn Collective> = Arc::new(group.into_iter().next().unwrap());
    let e = train(
        &cfg,
        &TrainOptions {
            collective: Some(coll),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("batch_size = 5") && e.contains("2 ranks"), "{e}");
}

/// `synthlm launch --procs 2 -- train`: two processes summing gradients over localhost TCP
/// train the model one process trains, rank 0 alone writes, and a failing rank stops the job.
#[test]
fn launch_runs_two_processes_that_train_what_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.max_steps = 8;
    base.train.ckpt_interval = 4;
    let exe = env!("CARGO_BIN_EXE_synthlm");
    let run = |name: &str, procs: Option<usize>| {
        let mut c = base.clone();
        c.out_dir = dir.path().join(name);
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
        let mut cmd = std::process::Command::new(exe);
        if let Some(n) = procs {
            cmd.args(["launch", "--procs", &n.to_string(), "--"]);
        }
        let out = cmd
            .args(["train", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.out_dir
    };
    let (one, two) = (run("one", None), run("two", Some(2)));
    let (a, b) = (weights(&one), weights(&two));
    let worst = a
        .iter()
        .flat_map(|(k, wa)| wa.iter().zip(&b[k]).map(|(x, y)| (x - y).abs()))
        .fold(0f32, f32::max);
    println!("max |weight difference| one process vs two: {worst:e}");
    assert!(worst < 1e-4, "{worst}");
    assert_eq!(losses(&one).len(), losses(&two).len());

    // A rank that cannot start its run (a config that does not exist) fails the job by name.
    let out = std::process::Command::new(exe)
        .args([
            "launch",
            "--procs",
            "2",
            "--",
            "train",
            "--config",
            "/nonexistent.toml",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited with"), "{err}");
}

/// The optimizer state of a run's latest checkpoint, by name.
fn optim_state(run: &std::path::Path) -> std::collections::HashMap<String, Vec<u32>> {
    let dir = checkpoint::latest(run).unwrap().unwrap();
    let ck = checkpoint::load(&dir, &candle_core::Device::Cpu).unwrap();
    ck.optim
        .into_iter()
        .filter(|(k, _)| k != "t")
        .map(|(k, t)| {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (k, v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

fn bits(
    w: std::collections::HashMap<String, Vec<f32>>,
) -> std::collections::BTreeMap<String, Vec<u32>> {
    w.into_iter()
        .map(|(k, v)| (k, v.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// Run `cfg` as two in-process replicas.
fn two_replicas(cfg: &synthlm::config::RunConfig, stop_after: Option<u64>) {
    std::thread::scope(|s| {
        for c in LocalReplicas::group(2) {
            s.spawn(move || {
                let coll: Arc<dyn Collective> = Arc::new(c);
                let opts = TrainOptions {
                    collective: Some(coll),
                    stop_after,
                    ..Default::default()
                };
                train(cfg, &opts).unwrap()
            });
        }
    });
}

/// ZeRO-1: each of two replicas keeps half of AdamW's state, yet the weights and the (gathered)
/// checkpointed state equal the unsharded run's bit for bit, and a sharded run resumes from
/// its own checkpoint to the same end.
#[test]
fn zero1_shards_the_optimizer_state_and_changes_no_bit() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.batch_size = 4;
    base.train.max_steps = 8;
    base.train.ckpt_interval = 4;
    base.train.eval_interval = 4;
    base.train.log_interval = 2;
    let mut plain = base.clone();
    plain.out_dir = dir.path().join("plain");
    two_replicas(&plain, None);
    let mut zero = base.clone();
    zero.train.zero1 = true;
    zero.out_dir = dir.path().join("zero");
    two_replicas(&zero, None);
    assert_eq!(bits(weights(&plain.out_dir)), bits(weights(&zero.out_dir)));
    let (sp, sz) = (optim_state(&plain.out_dir), optim_state(&zero.out_dir));
    assert_eq!(sp.len(), sz.len());
    assert!(
        sp == sz,
        "gathered optimizer state differs from the unsharded one"
    );

    // Resume: a sharded run stopped after step 4 (with a checkpoint) and run again ends where
    // the uninterrupted one did.
    let mut resumed = zero.clone();
    resumed.out_dir = dir.path().join("again");
    two_replicas(&resumed, Some(4));
    assert!(!resumed.out_dir.join("summary.json").exists());
    two_replicas(&resumed, None);
    assert_eq!(
        bits(weights(&resumed.out_dir)),
        bits(weights(&zero.out_dir))
    );
}

/// Ctrl-C sent to the launcher alone reaches every rank: they stop at the same step with one
/// checkpoint, the launcher says so (an error: the job did not finish), and the same command
/// then finishes the run with the weights of an uninterrupted one, bit for bit.
#[test]
fn launch_passes_ctrl_c_to_every_rank_and_the_same_command_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = common::training_fixture(dir.path(), 300);
    base.train.max_steps = 200; // long enough to be interrupted
    base.train.log_interval = 1;
    base.train.ckpt_interval = 100_000;
    let exe = env!("CARGO_BIN_EXE_synthlm");
    let launch = |c: &synthlm::config::RunConfig| {
        let path = c.out_dir.with_extension("toml");
        std::fs::write(&path, toml::to_string(c).unwrap()).unwrap();
        std::process::Command::new(exe)
            .args(["launch", "--procs", "2", "--", "train", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut cut = base.clone();
    cut.out_dir = dir.path().join("cut");
    let child = launch(&cut);
    let metrics = cut.out_dir.join("metrics.jsonl");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |s| s.lines().count()) < 3 {
        assert!(t0.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("interrupted"),
        "{err}"
    );
    let ck = checkpoint::latest(&cut.out_dir)
        .unwrap()
        .expect("a checkpoint");
    let state: checkpoint::CheckpointState =
        synthlm::io::read_json(&ck.join("state.json")).unwrap();
    assert!((3..200).contains(&state.step), "stopped at {}", state.step);

    let status = |c| {
        let out = launch(c).wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    status(&cut);
    let mut whole = base.clone();
    whole.out_dir = dir.path().join("whole");
    status(&whole);
    assert_eq!(bits(weights(&cut.out_dir)), bits(weights(&whole.out_dir)));
}

/// Which GPU a launched rank trains on: plain `cuda` is the rank's own GPU; a device that names
/// one GPU is an error in a job of several ranks (all would train on it), allowed at world 1.
#[test]
fn launched_ranks_take_their_own_gpu() {
    use synthlm::train::trainer::cuda_ordinal;
    assert_eq!(cuda_ordinal("cuda", None).unwrap(), 0);
    assert_eq!(cuda_ordinal("cuda:3", None).unwrap(), 3);
    assert_eq!(cuda_ordinal("cuda", Some((2, 4))).unwrap(), 2);
    assert_eq!(cuda_ordinal("cuda:0", Some((0, 1))).unwrap(), 0);
    let e = cuda_ordinal("cuda:0", Some((1, 2)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("all 2 ranks") && e.contains("`cuda`"), "{e}");
    for bad in ["cuda:x", "cudax", "gpu"] {
        let e = cuda_ordinal(bad, None).unwrap_err();
        assert!(format!("{e:#}").contains(bad), "{e:#}");
    }
}
