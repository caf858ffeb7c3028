//! Small file helpers used everywhere: every file a run writes goes through [`atomic_write`],
//! so a crash leaves either the old file or the new one, never half of one.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Write `path` by filling a temporary file in the same directory and renaming it into place.
/// The rename is atomic on POSIX file systems, so readers never see a partial file.
pub fn atomic_write<T>(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating directory {}", dir.display()))?;
    // Temporary files are created 0600; what we write is ordinary output, so ask for 0666 and
    // let the umask decide, as `File::create` would.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let mut w = BufWriter::new(tmp);
    let out = fill(&mut w).with_context(|| format!("writing {}", path.display()))?;
    let tmp = w.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("renaming temporary file to {}", path.display()))?;
    Ok(out)
}

/// Atomically write bytes.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(path, |w| Ok(w.write_all(bytes)?))
}

/// Atomically write a value as pretty JSON (with a trailing newline).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    write_bytes(path, s.as_bytes())
}

/// Read a JSON file with an error that names it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing JSON in {}", path.display()))
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn written_files_get_ordinary_permissions_not_a_temporary_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        super::write_json(&path, &1).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // Whatever the umask, others may read it as with File::create (umask 022 gives 644).
        let created = {
            let p = dir.path().join("plain");
            std::fs::File::create(&p).unwrap();
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode, created, "{mode:o} vs {created:o}");
    }
}
