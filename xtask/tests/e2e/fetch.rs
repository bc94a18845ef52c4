//! `cargo xtask data fetch` against a server this test runs on 127.0.0.1, serving small archives
//! in the official layouts: a fetch that succeeds and unpacks where the readers find it, a file
//! whose checksum is wrong (refused and removed, both digests named), a transfer cut off and then
//! resumed with a range request, and a missing file (404). Nothing here touches the internet.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use xtask::fetch::{Client, Remote, Source, Unpack, fetch};

use crate::support::{serial, text, write_plan, xtask};

/// A small HTTP/1.1 file server: `GET /<name>` with optional `Range: bytes=N-`. The first
/// request for `cut.0` sends its headers for the whole file but only `cut.1` bytes, then closes.
struct Server {
    url: String,
    stop: Arc<AtomicBool>,
    ranges: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>, cut: Option<(String, usize)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, ranges) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let cut = Arc::new(Mutex::new(cut));
        let (s, r) = (stop.clone(), ranges.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let _ = handle(stream, &files, &cut, &r);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { url, stop, ranges, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(stream: std::net::TcpStream, files: &HashMap<String, Vec<u8>>, cut: &Mutex<Option<(String, usize)>>, ranges: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut from = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            from = v.trim().trim_end_matches('-').parse().unwrap_or(0);
            ranges.fetch_add(1, Ordering::SeqCst);
        }
    }
    let name = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    let mut out = stream;
    let Some(body) = files.get(&name) else {
        return out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    };
    let part = &body[from.min(body.len())..];
    let status = if from > 0 { format!("206 Partial Content\r\nContent-Range: bytes {from}-{}/{}", body.len() - 1, body.len()) } else { "200 OK".into() };
    write!(out, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len())?;
    let limit = {
        let mut cut = cut.lock().unwrap();
        match cut.take() {
            Some((file, n)) if file == name => n,
            other => {
                *cut = other;
                part.len()
            }
        }
    };
    out.write_all(&part[..limit.min(part.len())])?;
    out.flush()
}

/// A CIFAR-10 binary archive in the official layout, with `n` images per batch file.
fn cifar10_archive(n: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let files = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"];
    for (i, f) in files.iter().enumerate() {
        let mut data = Vec::new();
        for k in 0..n {
            data.push(((i + k) % 10) as u8);
            data.extend((0..3072).map(|p| ((p + k * 7) % 256) as u8));
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("cifar-10-batches-bin/{f}"), data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn source(base: &str, file: &str, bytes: &[u8], sha256: Option<&str>) -> Source {
    let digest = hex::encode(Sha256::digest(bytes));
    Source {
        name: "cifar10".into(),
        base_url: base.into(),
        files: vec![Remote { file: file.into(), bytes: bytes.len() as u64, sha256: sha256.map_or(digest, String::from) }],
        unpack: Unpack::TarGz,
    }
}

fn read_test_split(root: &Path) -> usize {
    ipr_data::read_cifar10(root, ipr_data::Split::Test).map(|s| ipr_data::Dataset::len(&s)).unwrap()
}

#[test]
fn fetch_succeeds_refuses_a_wrong_file_resumes_and_reports_a_missing_one() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let archive = cifar10_archive(3);
    let file = "cifar-10-binary.tar.gz";
    let server = Server::start([(file.to_string(), archive.clone())].into(), None);
    let client = Client::new(Some(server.url.clone()), false);

    // Success: checked, unpacked where the reader finds it, nothing left behind.
    let root = tmp.path().join("data/cifar10");
    assert!(fetch(&client, &source(&server.url, file, &archive, None), &root).unwrap());
    assert_eq!(read_test_split(&root), 3);
    assert!(!tmp.path().join("data/.download").exists(), "downloads are cleaned up");
    assert!(!fetch(&client, &source(&server.url, file, &archive, None), &root).unwrap(), "an existing folder is left alone");

    // A wrong checksum: the file is refused and removed, both digests named, no folder made.
    let bad_root = tmp.path().join("bad/cifar10");
    let wanted = "0".repeat(64);
    let err = fetch(&client, &source(&server.url, file, &archive, Some(&wanted)), &bad_root).unwrap_err().to_string();
    let actual = hex::encode(Sha256::digest(&archive));
    assert!(err.contains(&wanted) && err.contains(&actual) && err.contains("removed"), "{err}");
    assert!(!bad_root.exists() && !tmp.path().join("bad/.download").join(file).exists() && !tmp.path().join("bad/.download").join(format!("{file}.part")).exists());

    // A missing file: HTTP 404, nothing made.
    let missing = source(&server.url, "cifar-10-missing.tar.gz", &archive, None);
    let err = fetch(&client, &missing, &tmp.path().join("none/cifar10")).unwrap_err().to_string();
    assert!(err.contains("404") && err.contains("cifar-10-missing.tar.gz"), "{err}");
    assert!(!tmp.path().join("none/cifar10").exists());
    drop(server);

    // Cut off half-way, then resumed with a range request from where it stopped.
    let half = archive.len() / 2;
    let server = Server::start([(file.to_string(), archive.clone())].into(), Some((file.to_string(), half)));
    let client = Client::new(Some(server.url.clone()), false);
    let root = tmp.path().join("resumed/cifar10");
    let err = fetch(&client, &source(&server.url, file, &archive, None), &root).unwrap_err().to_string();
    assert!(err.contains("run the fetch again"), "{err}");
    let part = tmp.path().join("resumed/.download").join(format!("{file}.part"));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), half as u64, "the partial download is kept");
    assert!(fetch(&client, &source(&server.url, file, &archive, None), &root).unwrap());
    assert_eq!(server.ranges.load(Ordering::SeqCst), 1, "the second request resumes with a range");
    assert_eq!(read_test_split(&root), 3);
}

/// The command line: the official manifest against a mirror serving another file (refused with
/// the official digest), an unknown name, and a plan whose dataset is missing naming the fetch.
#[test]
fn fetch_from_the_command_line_and_the_plan_error_that_names_it() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start([("cifar-10-binary.tar.gz".to_string(), cifar10_archive(1))].into(), None);
    let root = tmp.path().join("c10");
    let out = xtask(&["data", "fetch", "cifar10", "--mirror", &server.url, "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd") && text(&out).contains(&server.url), "{}", text(&out));
    assert!(!root.exists());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    let out = cmd.args(["data", "fetch", "mnist", "--root", tmp.path().join("m").to_str().unwrap()]).env(xtask::fetch::MIRROR_VAR, &server.url).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("404") && text(&out).contains("train-images-idx3-ubyte.gz") && text(&out).contains(&server.url), "{}", text(&out));
    let out = xtask(&["data", "fetch", "imagenet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cifar10, cifar100, mnist, fashion-mnist"), "{}", text(&out));
    let plan = write_plan(tmp.path(), &format!(
        "name = \"p\"\n[data]\ndataset = \"cifar10\"\nroot = \"{}\"\n[model]\narch = \"alexnet\"\n[[stage]]\nname = \"b\"\nkind = \"train\"\nscheme = \"v0\"\n",
        tmp.path().join("nowhere").display()
    ));
    let out = xtask(&["run", plan.to_str().unwrap(), "--runs", tmp.path().join("runs").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("cargo xtask data fetch cifar10 --root {}", tmp.path().join("nowhere").display())), "{}", text(&out));
}
