//! A data-parallel job of several processes on one machine: the launcher that starts them and
//! the TCP [`Collective`] that sums their gradients on the CPU.
//!
//! `synthlm launch --procs N -- train ARGS` starts N copies of `synthlm train ARGS` with
//! `SYNTHLM_RANK`, `SYNTHLM_WORLD_SIZE` and `SYNTHLM_RENDEZVOUS` (a file) set; each reads them
//! with [`from_env`]. Rank 0 listens on a localhost port and writes it to the rendezvous file;
//! the others connect and say who they are. A sum is a star: every rank sends its buffer to
//! rank 0, which adds them in rank order (the order [`super::collective::LocalReplicas`] uses,
//! so the two give the same floats) and sends the result back. That is O(N) traffic through one
//! process, fine for a few CPU processes. GPU ranks of a build with the `nccl` feature use
//! NCCL instead ([`super::nccl::NcclGroup`]), through the same launcher, rendezvous file and
//! rank-0-writes logic; without it they reduce through the host over TCP.

use super::collective::Collective;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ENV_RANK: &str = "SYNTHLM_RANK";
pub const ENV_WORLD: &str = "SYNTHLM_WORLD_SIZE";
pub const ENV_RENDEZVOUS: &str = "SYNTHLM_RENDEZVOUS";

/// How long ranks wait for each other to start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// One rank of a multi-process job on this machine.
pub struct TcpGroup {
    rank: usize,
    world: usize,
    /// Rank 0: a stream to each other rank (index r-1); other ranks: the stream to rank 0.
    peers: Mutex<Vec<TcpStream>>,
}

/// The collective this process belongs to, from the launcher's environment; `None` when the
/// process was not started by `synthlm launch` (or with a world of 1). `device` is the run's
/// device: CUDA ranks of an `nccl` build sum over NCCL, all others over TCP.
pub fn from_env(device: &str) -> Result<Option<Arc<dyn Collective>>> {
    let (Ok(rank), Ok(world)) = (std::env::var(ENV_RANK), std::env::var(ENV_WORLD)) else {
        return Ok(None);
    };
    let rank: usize = rank.parse().with_context(|| format!("{ENV_RANK}={rank}"))?;
    let world: usize = world
        .parse()
        .with_context(|| format!("{ENV_WORLD}={world}"))?;
    if world <= 1 {
        return Ok(None);
    }
    let file = std::env::var(ENV_RENDEZVOUS).map_err(|_| anyhow!("{ENV_RENDEZVOUS} is not set"))?;
    let file = Path::new(&file);
    #[cfg(feature = "nccl")]
    if device.starts_with("cuda") {
        let ordinal = super::trainer::cuda_ordinal(device, Some((rank, world)))?;
        return Ok(Some(Arc::new(super::nccl::NcclGroup::join(
            rank, world, file, ordinal,
        )?)));
    }
    let _ = device;
    Ok(Some(Arc::new(TcpGroup::join(rank, world, file)?)))
}

impl TcpGroup {
    /// Join the job: rank 0 listens and publishes its port in `rendezvous`; the others wait
    /// for the file, connect and send their rank.
    pub fn join(rank: usize, world: usize, rendezvous: &Path) -> Result<TcpGroup> {
        if rank >= world {
            bail!("rank {rank} is outside a world of {world}");
        }
        let peers = if rank == 0 {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            crate::io::write_bytes(rendezvous, port.to_string().as_bytes())?;
            accept_ranks(&listener, world)?
        } else {
            let mut s = connect(rendezvous)?;
            write_u64(&mut s, rank as u64)?;
            vec![s]
        };
        for s in &peers {
            s.set_nodelay(true)?;
        }
        Ok(TcpGroup {
            rank,
            world,
            peers: Mutex::new(peers),
        })
    }
}

/// Rank 0: accept the other ranks (each sends its rank first), in rank order; a rank that has
/// not connected within [`JOIN_TIMEOUT`] is an error, not a hang.
fn accept_ranks(listener: &TcpListener, world: usize) -> Result<Vec<TcpStream>> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    let mut slots: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
    let mut joined = 0;
    while joined + 1 < world {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > JOIN_TIMEOUT {
                    bail!(
                        "rendezvous: {} of {} ranks joined within {JOIN_TIMEOUT:?}",
                        joined + 1,
                        world
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(JOIN_TIMEOUT))?;
        let r = read_u64(&mut s)? as usize;
        s.set_read_timeout(None)?;
        if r == 0 || r >= world || slots[r - 1].is_some() {
            bail!("rendezvous: unexpected rank {r} connected");
        }
        slots[r - 1] = Some(s);
        joined += 1;
    }
    Ok(slots.into_iter().map(|s| s.expect("filled")).collect())
}

/// Wait for rank 0's port in `rendezvous`, then connect to it.
fn connect(rendezvous: &Path) -> Result<TcpStream> {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(rendezvous) {
            if let Ok(port) = text.trim().parse::<u16>() {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                    return Ok(s);
                }
            }
        }
        if start.elapsed() > JOIN_TIMEOUT {
            bail!(
                "rank 0 did not publish a port in {} within {:?}",
                rendezvous.display(),
                JOIN_TIMEOUT
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Collective for TcpGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let mut peers = self.peers.lock().expect("peer lock");
        if self.rank == 0 {
            // Rank order: buf (rank 0) + rank 1 + rank 2 ...
            for (i, s) in peers.iter_mut().enumerate() {
                let theirs =
                    read_f32s(s).with_context(|| format!("receiving from rank {}", i + 1))?;
                if theirs.len() != buf.len() {
                    bail!(
                        "all-reduce: rank {} sent {} values, rank 0 has {}",
                        i + 1,
                        theirs.len(),
                        buf.len()
                    );
                }
                buf.iter_mut().zip(&theirs).for_each(|(a, b)| *a += b);
            }
            for s in peers.iter_mut() {
                write_f32s(s, buf)?;
            }
        } else {
            let s = &mut peers[0];
            write_f32s(s, buf)?;
            let sum = read_f32s(s).context("receiving the sum from rank 0 (did it fail?)")?;
            if sum.len() != buf.len() {
                bail!(
                    "all-reduce: rank 0 returned {} values for {}",
                    sum.len(),
                    buf.len()
                );
            }
            buf.copy_from_slice(&sum);
        }
        Ok(())
    }
}

fn write_u64(s: &mut TcpStream, x: u64) -> Result<()> {
    Ok(s.write_all(&x.to_le_bytes())?)
}

fn read_u64(s: &mut TcpStream) -> Result<u64> {
    let mut b = [0u8; 8];
    s.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn write_f32s(s: &mut TcpStream, v: &[f32]) -> Result<()> {
    let mut bytes = Vec::with_capacity(8 + 4 * v.len());
    bytes.extend_from_slice(&(v.len() as u64).to_le_bytes());
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    Ok(s.write_all(&bytes)?)
}

fn read_f32s(s: &mut TcpStream) -> Result<Vec<f32>> {
    let n = read_u64(s)? as usize;
    let mut bytes = vec![0u8; 4 * n];
    s.read_exact(&mut bytes)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect())
}

/// `synthlm launch`: run `args` (a synthlm command line) as `procs` ranks of one job and wait
/// for all of them. If one fails, the others are stopped and the error names the rank. Rank 0
/// keeps the terminal's output; the others' standard output is discarded (their errors still
/// show). Ctrl-C (SIGINT) is passed on to every rank, whose trainers agree to stop at the end
/// of the same step and save one checkpoint; the launcher waits for them and returns an error
/// saying so (the job did not finish).
pub fn launch(procs: usize, args: &[String]) -> Result<()> {
    launch_exe(&std::env::current_exe()?, procs, args)
}

/// The synthlm binary to launch ranks of: `SYNTHLM_BIN` if set, else this program if it is
/// synthlm (a notebook or test harness is not).
pub fn synthlm_exe() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("SYNTHLM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    if exe.file_stem().is_some_and(|s| s == "synthlm") {
        return Ok(exe);
    }
    bail!(
        "runs of several ranks are started from the synthlm binary: set SYNTHLM_BIN (this program is {})",
        exe.display()
    )
}

/// [`launch`] with a given synthlm binary. Each rank gets `RAYON_NUM_THREADS` = cores / ranks
/// (unless it is set already), so CPU ranks share the cores instead of each taking all.
pub fn launch_exe(exe: &Path, procs: usize, args: &[String]) -> Result<()> {
    if procs == 0 {
        bail!("--procs must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let rendezvous: PathBuf = dir.path().join("rendezvous");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads =
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| (cores / procs).max(1).to_string());
    let mut children = Vec::new();
    for rank in 0..procs {
        let mut cmd = std::process::Command::new(exe);
        cmd.args(args)
            .env(ENV_RANK, rank.to_string())
            .env(ENV_WORLD, procs.to_string())
            .env(ENV_RENDEZVOUS, &rendezvous)
            .env("RAYON_NUM_THREADS", &threads);
        if rank > 0 {
            cmd.stdout(std::process::Stdio::null());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting rank {rank}"))?;
        children.push((rank, child));
    }
    let interrupted = crate::train::interrupt::install();
    let (mut failed, mut forwarded) = (None, false);
    while failed.is_none() && !children.is_empty() {
        if !forwarded && interrupted.load(Ordering::SeqCst) {
            // A terminal's Ctrl-C reaches the whole process group; `kill -INT` on the
            // launcher reaches only it. Passing it on covers both (a second SIGINT only sets
            // a rank's flag again).
            for (_, c) in &children {
                // SAFETY: kill(2) on a child we spawned and have not reaped yet.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGINT) };
            }
            forwarded = true;
        }
        let mut running = Vec::new();
        for (rank, mut c) in children {
            match c.try_wait()? {
                Some(st) if !st.success() => failed = Some(format!("rank {rank} exited with {st}")),
                Some(_) => {}
                None => running.push((rank, c)),
            }
        }
        children = running;
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(why) = failed {
        for (_, mut c) in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        bail!("launch: {why}; the other ranks were stopped");
    }
    if forwarded {
        interrupted.store(false, Ordering::SeqCst);
        bail!("launch: interrupted; every rank stopped after saving a checkpoint (run the same command to resume)");
    }
    Ok(())
}
