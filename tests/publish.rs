//! The three outputs users see, built for real: the notebook executed headless through the
//! evcxr kernel, the mdBook site loaded in headless Chromium, the paper compiled by tectonic
//! offline and read back with pdftotext. They need the tools `scripts/setup.sh notebook book
//! paper` installs (scripts/test.sh does, and runs these with --include-ignored).
//!
//! Book and paper are built in temporary copies from the smoke results, so the committed pages
//! (generated from the mini results) are never touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use synthlm::experiments::exp1::Exp1;
use synthlm::experiments::results::Results;
use synthlm::experiments::scale::Scale;
use synthlm::experiments::{Experiment, Paths};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools_dir() -> PathBuf {
    std::env::var_os("SYNTHLM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/synthlm/tools")
        })
}

/// Experiment 1 at the smoke scale on the committed corpora, computed once per test binary in
/// a folder of its own (tests run in parallel threads; the notebook uses the standard paths).
fn smoke_results() -> &'static (Results, Paths) {
    static SMOKE: std::sync::OnceLock<(Results, Paths)> = std::sync::OnceLock::new();
    SMOKE.get_or_init(|| {
        synthlm::cpu::configure();
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let standard = Paths::standard(&root(), 1, "smoke");
        let paths = Paths {
            work: dir.path().join("work"),
            results: dir.path().join("results"),
            ..standard
        };
        let s = Scale::standard(&root(), 1, "smoke").unwrap();
        let r = synthlm::experiments::run(&Exp1, &s, &paths, false).unwrap();
        (r, paths)
    })
}

/// Where the toolchain's `libstd-*.so` lives. evcxr links each cell against it dynamically, with a
/// RUNPATH relative to cargo's `deps/` folder, but loads the cell's library through its hard link
/// one folder up, where that relative path misses; naming the folder here makes the load work
/// whatever the cache's location.
fn rust_std_dylib_dir() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir"])
        .output()
        .expect("rustc");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (install with scripts/setup.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
#[ignore = "needs Jupyter and evcxr_jupyter: scripts/setup.sh notebook"]
fn notebook_runs_headless_with_the_smoke_profile() {
    let out = tempfile::tempdir().unwrap();
    let executed = out.path().join("executed.ipynb");
    let cache = tools_dir().join("evcxr");
    std::fs::create_dir_all(&cache).unwrap();
    run(Command::new("jupyter")
        .args([
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=3000",
            "--ExecutePreprocessor.kernel_name=rust",
            "--output",
        ])
        .arg(&executed)
        .arg(root().join("notebooks/01-pure-synthetic.ipynb"))
        .env("SYNTHLM_PROFILE", "smoke")
        .env("EVCXR_TMPDIR", &cache)
        .env("LD_LIBRARY_PATH", rust_std_dylib_dir()));
    let nb: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&executed).unwrap()).unwrap();
    let mut texts = String::new();
    for cell in nb["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cell_type"] == "code")
    {
        for o in cell["outputs"].as_array().unwrap() {
            assert_ne!(o["output_type"], "error", "a cell failed: {o}");
            texts.push_str(&o.to_string());
        }
    }
    assert!(
        texts.contains("profile smoke"),
        "the first cell ran with the smoke profile"
    );
    assert!(
        texts.contains("trained on") && texts.contains("synthetic"),
        "the results table printed"
    );
    assert!(
        texts.contains("image/svg+xml") && texts.contains("bits per byte"),
        "a figure rendered inline"
    );
}

#[test]
#[ignore = "needs mdbook and Debian chromium: scripts/setup.sh book"]
fn book_builds_and_the_experiment_page_shows_its_table_and_figures() {
    let (r, paths) = smoke_results();
    let tmp = tempfile::tempdir().unwrap();
    let book = tmp.path().join("book");
    copy_dir(&root().join("book"), &book);
    Exp1.report(r, &paths.results)
        .unwrap()
        .write_book(&book.join("src/generated"))
        .unwrap();
    run(Command::new("mdbook").arg("build").arg(&book));
    let site = book.join("book");
    // Serve the site on a free loopback port and log every request.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tmp.path().join("server.log");
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&site)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let url = format!("http://127.0.0.1:{port}/exp1.html");
    let profile = tmp.path().join("chrome");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ];
    let dom = run(Command::new("chromium")
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url));
    let shot = root().join(".work/screenshots");
    std::fs::create_dir_all(&shot).unwrap();
    run(Command::new("chromium")
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!(
            "--screenshot={}",
            shot.join("book-exp1.png").display()
        ))
        .arg("--window-size=1280,2400")
        .arg(&url));
    server.kill().ok();
    server.wait().ok();
    assert!(
        dom.contains("<table")
            && dom.contains("trained on")
            && dom.contains("bits/byte, held-out real")
            && dom.contains("kn-5"),
        "the results table is on the page"
    );
    let requests = std::fs::read_to_string(&log).unwrap();
    for f in ["exp1/curves-tiny-wide-real.svg", "exp1/bars-tiny.svg"] {
        assert!(dom.contains(f), "{f} is referenced");
        assert!(
            requests
                .lines()
                .any(|l| l.contains(f) && l.contains("\" 200 ")),
            "the browser loaded {f}:\n{requests}"
        );
    }
}

#[test]
#[ignore = "needs tectonic, Debian TeX Live and poppler-utils: scripts/setup.sh paper"]
fn paper_builds_offline_and_prints_the_result_numbers() {
    let (r, paths) = smoke_results();
    let tmp = tempfile::tempdir().unwrap();
    let paper = tmp.path().join("paper");
    copy_dir(&root().join("paper"), &paper);
    Exp1.report(r, &paths.results)
        .unwrap()
        .write_paper(&paper.join("generated"))
        .unwrap();
    let bundle = tools_dir().join("tex-bundle");
    run(Command::new("tectonic")
        .arg("-b")
        .arg(&bundle)
        .args(["--keep-logs", "main.tex"])
        .current_dir(&paper)
        .env("HOME", tmp.path()));
    let text = run(Command::new("pdftotext")
        .args(["-layout"])
        .arg(paper.join("main.pdf"))
        .arg("-"));
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for h in &r.headline {
        let m = synthlm::report::tables::mean_ci(h.mean, h.lo, h.hi);
        assert!(
            flat.contains(&m),
            "{m} ({} / {} / {}) is in the PDF",
            h.student,
            h.condition,
            h.eval_set
        );
    }
    assert!(
        flat.contains("kn-5"),
        "the baselines are in the results table"
    );
    assert!(flat.contains("Experiment 1") && flat.contains("Limitations"));
}
