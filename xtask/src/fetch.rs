//! `cargo xtask data fetch NAME`: downloading a dataset's official archives as torchvision does,
//! over HTTPS (ureq, rustls), with a progress bar, resuming a partial download, checking every
//! file's size and SHA-256, and unpacking atomically into the folder the plans read by default.
//!
//! A download goes to `<data>/.download/<file>.part`, is renamed to `<file>` once its size and
//! digest are right (a wrong one is removed, naming both digests), and is unpacked into a
//! temporary folder renamed to the dataset's folder at the end: an interrupted fetch never
//! leaves a folder the readers would take for a whole dataset.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// The environment variable that points fetches at another host (as `--mirror` does).
pub const MIRROR_VAR: &str = "DEEPIPR_DATA_MIRROR";

/// One file of a dataset on its host.
#[derive(Clone, Debug)]
pub struct Remote {
    /// File name, also its last path component on the host.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// What becomes of the downloaded files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unpack {
    /// Kept as they are (gzipped IDX files, which the readers read directly).
    Keep,
    /// Each a `.tar.gz` archive, unpacked.
    TarGz,
}

/// A dataset to fetch.
#[derive(Clone, Debug)]
pub struct Source {
    /// The name `fetch` takes.
    pub name: String,
    /// The official host's folder of the files (the file name is appended).
    pub base_url: String,
    /// The files.
    pub files: Vec<Remote>,
    /// What becomes of them.
    pub unpack: Unpack,
}

fn remote(file: &str, bytes: u64, sha256: &str) -> Remote {
    Remote { file: file.into(), bytes, sha256: sha256.into() }
}

/// The datasets `fetch` knows, with their official archives (sizes and SHA-256 as
/// tensorflow/datasets' checksum files list them).
pub fn sources() -> Vec<Source> {
    let idx = |name: &str, base: &str, files: [(&str, u64, &str); 4]| Source {
        name: name.into(),
        base_url: base.into(),
        files: files.iter().map(|(f, b, s)| remote(f, *b, s)).collect(),
        unpack: Unpack::Keep,
    };
    vec![
        Source {
            name: "cifar10".into(),
            base_url: "https://www.cs.toronto.edu/~kriz".into(),
            files: vec![remote("cifar-10-binary.tar.gz", 170_052_171, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")],
            unpack: Unpack::TarGz,
        },
        Source {
            name: "cifar100".into(),
            base_url: "https://www.cs.toronto.edu/~kriz".into(),
            files: vec![remote("cifar-100-binary.tar.gz", 168_513_733, "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec")],
            unpack: Unpack::TarGz,
        },
        idx("mnist", "https://ossci-datasets.s3.amazonaws.com/mnist", [
            ("train-images-idx3-ubyte.gz", 9_912_422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            ("train-labels-idx1-ubyte.gz", 28_881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            ("t10k-images-idx3-ubyte.gz", 1_648_877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            ("t10k-labels-idx1-ubyte.gz", 4_542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ]),
        idx("fashion-mnist", "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion", [
            ("train-images-idx3-ubyte.gz", 26_421_880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("train-labels-idx1-ubyte.gz", 29_515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            ("t10k-images-idx3-ubyte.gz", 4_422_102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ("t10k-labels-idx1-ubyte.gz", 5_148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        ]),
    ]
}

/// The dataset `name` fetches.
///
/// # Errors
/// An unknown name, with the list of known ones.
pub fn source(name: &str) -> Result<Source> {
    let all = sources();
    let names: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
    all.into_iter().find(|s| s.name == name).with_context(|| format!("no dataset named `{name}` to fetch; use one of {}", names.join(", ")))
}

/// How to reach the host: the official one, or a mirror serving the same file names.
pub struct Client {
    agent: ureq::Agent,
    mirror: Option<String>,
    progress: bool,
}

impl Client {
    /// A client for `mirror` (else [`MIRROR_VAR`], else the official hosts); `progress` draws a
    /// progress bar.
    pub fn new(mirror: Option<String>, progress: bool) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build();
        let mirror = mirror.or_else(|| std::env::var(MIRROR_VAR).ok()).filter(|m| !m.is_empty());
        Self { agent: config.into(), mirror, progress }
    }

    fn url(&self, source: &Source, file: &str) -> String {
        let base = self.mirror.as_deref().unwrap_or(&source.base_url);
        format!("{}/{file}", base.trim_end_matches('/'))
    }
}

fn digest_of(path: &Path) -> Result<(Sha256, u64)> {
    let mut file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut hasher = Sha256::new();
    let n = std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok((hasher, n))
}

/// Downloads `remote` into `dir` (resuming `<file>.part`), checks it and returns its path.
fn download(client: &Client, source: &Source, remote: &Remote, dir: &Path) -> Result<PathBuf> {
    let done = dir.join(&remote.file);
    if done.exists() {
        return Ok(done);
    }
    let part = dir.join(format!("{}.part", remote.file));
    let url = client.url(source, &remote.file);
    let mut have = fs::metadata(&part).map_or(0, |m| m.len());
    if have > remote.bytes {
        fs::remove_file(&part)?;
        have = 0;
    }
    if have < remote.bytes {
        let mut request = client.agent.get(&url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| anyhow::anyhow!("cannot download `{url}`: {e}; check the network, or point --mirror (or {MIRROR_VAR}) at a host that serves `{}`", remote.file))?;
        let status = response.status().as_u16();
        match status {
            206 => {}
            200 => have = 0,
            416 => {
                fs::remove_file(&part)?;
                bail!("`{url}` refused to resume the partial download (416); it was removed: run the fetch again");
            }
            code => bail!("`{url}` answered HTTP {code}: nothing was downloaded; check the name, or the mirror (--mirror, {MIRROR_VAR})"),
        }
        let mut file = OpenOptions::new().create(true).write(true).truncate(have == 0).open(&part).with_context(|| format!("cannot write `{}`", part.display()))?;
        file.seek(std::io::SeekFrom::Start(have))?;
        file.set_len(have)?;
        let bar = progress_bar(client.progress, &remote.file, remote.bytes, have);
        let mut reader = response.into_body().into_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut got = have;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    file.flush()?;
                    bail!("the download of `{url}` broke off after {got} of {} bytes ({e}); run the fetch again to resume it", remote.bytes);
                }
            };
            file.write_all(&buffer[..n]).with_context(|| format!("cannot write `{}`; check the free space", part.display()))?;
            got += n as u64;
            bar.set_position(got);
        }
        file.sync_all()?;
        bar.finish_and_clear();
        // A whole response of another size is another file: the check below refuses it.
    }
    let (hasher, size) = digest_of(&part)?;
    let actual = hex::encode(hasher.finalize());
    if size != remote.bytes || actual != remote.sha256 {
        fs::remove_file(&part)?;
        bail!(
            "`{url}` is not the expected file: {size} bytes with SHA-256 {actual}, expected {} bytes with SHA-256 {}; it was removed (a damaged download, or a mirror serving another file)",
            remote.bytes,
            remote.sha256
        );
    }
    fs::rename(&part, &done)?;
    Ok(done)
}

fn progress_bar(shown: bool, name: &str, total: u64, at: u64) -> indicatif::ProgressBar {
    if !shown {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total).with_position(at);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}

/// Unpacks (or copies) the checked `files` into a temporary folder beside `root`, then renames
/// it to `root`.
fn install(source: &Source, files: &[PathBuf], root: &Path) -> Result<()> {
    let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    let result = (|| -> Result<()> {
        for file in files {
            match source.unpack {
                Unpack::Keep => {
                    fs::copy(file, tmp.join(file.file_name().context("a file name")?))?;
                }
                Unpack::TarGz => {
                    let reader = flate2::read::GzDecoder::new(File::open(file)?);
                    let mut archive = tar::Archive::new(reader);
                    archive.set_preserve_permissions(false);
                    for entry in archive.entries().with_context(|| format!("`{}` is not a tar.gz archive", file.display()))? {
                        // `unpack_in` refuses paths that leave the folder.
                        entry?.unpack_in(&tmp).with_context(|| format!("cannot unpack `{}`", file.display()))?;
                    }
                }
            }
        }
        fs::rename(&tmp, root).with_context(|| format!("cannot move the unpacked dataset to `{}`", root.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Fetches `source` into `root` (the dataset's folder): downloads into `<parent>/.download`,
/// checks, unpacks. A `root` that exists is left alone.
///
/// # Errors
/// A download that fails (resumable by running again), a file whose digest is wrong (removed),
/// or a folder that cannot be written.
pub fn fetch(client: &Client, source: &Source, root: &Path) -> Result<bool> {
    if root.exists() {
        return Ok(false);
    }
    let parent = root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let downloads = parent.join(".download");
    fs::create_dir_all(&downloads).with_context(|| format!("cannot create `{}`; check that the folder is writable", downloads.display()))?;
    let mut files = Vec::new();
    for remote in &source.files {
        files.push(download(client, source, remote, &downloads)?);
        tracing::info!("{} checked (SHA-256 {})", remote.file, &remote.sha256[..16]);
    }
    install(source, &files, root)?;
    for file in &files {
        let _ = fs::remove_file(file);
    }
    let _ = fs::remove_dir(&downloads);
    Ok(true)
}
