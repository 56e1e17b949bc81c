//! The whole fetch and verify path against the loopback server of `test_server`: a good fetch,
//! an idempotent rerun that makes no request, a corrupted file, a truncated transfer, a 404,
//! resuming from a `.part`, mirror fallback, archives, and the repository's MNIST copy checked
//! by its contents.

use super::fetch::{Fetched, fetch, part_path};
use super::http::Client;
use super::sources::{FileSpec, Member, Source};
use super::test_server::{Fault, Logged, Server};
use super::verify::{self, sha256_hex};
use super::{Task, archive};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn client() -> Client {
    let mut c = Client::new(false);
    c.retry_pause = Duration::ZERO;
    c
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A small IDX image file (`count` images of 3x4) whose bytes depend on `seed`, gzipped.
fn idx_gz(count: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for v in [0x0803u32, count, 3, 4] {
        raw.extend_from_slice(&v.to_be_bytes());
    }
    raw.extend((0..count * 12).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    gzip(&raw)
}

fn sha(bytes: &[u8]) -> String {
    sha256_hex(bytes).unwrap()
}

/// A two-file data set served by `server` under `/tiny/`.
fn tiny(server: &Server, a: &[u8], b: &[u8]) -> Source {
    server.serve("/tiny/a-idx3-ubyte.gz", a);
    server.serve("/tiny/b-idx3-ubyte.gz", b);
    Source {
        name: "tiny".into(),
        mirrors: vec![server.url("tiny")],
        files: vec![
            FileSpec::new("a-idx3-ubyte.gz", &sha(a)),
            FileSpec::new("b-idx3-ubyte.gz", &sha(b)),
        ],
    }
}

fn run(source: &Source, dir: &Path) -> (anyhow::Result<Fetched>, String) {
    let mut out = Vec::new();
    let result = fetch(source, dir, &client(), &mut out);
    (result, String::from_utf8(out).unwrap())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_fetch_verifies_every_file_and_a_second_run_makes_no_request() {
    let server = Server::start();
    let (a, b) = (idx_gz(5, 1), idx_gz(7, 2));
    let source = tiny(&server, &a, &b);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let (result, log) = run(&source, &dir);
    let done = result.unwrap();
    assert_eq!((done.downloaded, done.present), (2, 0), "{log}");
    assert_eq!(std::fs::read(dir.join("a-idx3-ubyte.gz")).unwrap(), a);
    assert_eq!(std::fs::read(dir.join("b-idx3-ubyte.gz")).unwrap(), b);
    assert_eq!(names_in(&dir), ["a-idx3-ubyte.gz", "b-idx3-ubyte.gz"]);
    assert_eq!(server.requests().len(), 2);
    assert!(log.contains("downloaded a-idx3-ubyte.gz"), "{log}");

    let (result, log) = run(&source, &dir);
    assert_eq!(result.unwrap().present, 2, "{log}");
    assert_eq!(
        server.requests().len(),
        2,
        "the rerun asked the server: {log}"
    );
    assert!(log.contains("present    a-idx3-ubyte.gz"), "{log}");
    let mut out = Vec::new();
    assert_eq!(verify::verify(&source, &dir, &mut out).unwrap(), 0);
}

#[test]
fn a_corrupted_file_is_refused_and_leaves_no_file() {
    let server = Server::start();
    let (a, b) = (idx_gz(5, 1), idx_gz(7, 2));
    let source = tiny(&server, &a, &b);
    let mut corrupt = b.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    server.serve("/tiny/b-idx3-ubyte.gz", &corrupt);
    let tmp = tempfile::tempdir().unwrap();
    let (result, log) = run(&source, tmp.path());
    let e = format!("{:#}", result.unwrap_err());
    assert!(e.contains("checksum mismatch"), "{e}");
    assert!(
        e.contains(&format!("{}b-idx3-ubyte.gz", server.url("tiny"))),
        "{e}"
    );
    assert!(e.contains(&sha(&corrupt)) && e.contains(&sha(&b)), "{e}");
    // The good file stays; nothing, not even a part, under the bad file's names.
    assert_eq!(names_in(tmp.path()), ["a-idx3-ubyte.gz"], "{log}");
}

#[test]
fn a_truncated_transfer_is_resumed_with_a_range_request() {
    let server = Server::start();
    let (a, b) = (idx_gz(40, 1), idx_gz(3, 2));
    let source = tiny(&server, &a, &b);
    server.serve_with("/tiny/a-idx3-ubyte.gz", &a, Fault::TruncateFirst(1));
    let tmp = tempfile::tempdir().unwrap();
    let (result, log) = run(&source, tmp.path());
    result.unwrap();
    assert!(log.contains("retrying   a-idx3-ubyte.gz"), "{log}");
    assert!(
        log.contains(&format!("stopped after {} of {}", a.len() / 2, a.len())),
        "{log}"
    );
    assert!(
        log.contains(&format!("resumed at byte {}", a.len() / 2)),
        "{log}"
    );
    let a_requests: Vec<Logged> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/tiny/a-idx3-ubyte.gz")
        .collect();
    assert_eq!(a_requests.len(), 2);
    assert_eq!(a_requests[0].range_start, None);
    assert_eq!(a_requests[1].range_start, Some((a.len() / 2) as u64));
    assert_eq!(
        std::fs::read(tmp.path().join("a-idx3-ubyte.gz")).unwrap(),
        a
    );
}

#[test]
fn a_transfer_that_keeps_failing_keeps_its_part_for_the_next_run() {
    let server = Server::start();
    let (a, b) = (idx_gz(64, 1), idx_gz(3, 2));
    let source = tiny(&server, &a, &b);
    server.serve_with(
        "/tiny/a-idx3-ubyte.gz",
        &a,
        Fault::TruncateFirst(usize::MAX),
    );
    let tmp = tempfile::tempdir().unwrap();
    let (result, _) = run(&source, tmp.path());
    let e = format!("{:#}", result.unwrap_err());
    assert!(e.contains("stopped after") && e.contains("is kept"), "{e}");
    assert!(!tmp.path().join("a-idx3-ubyte.gz").exists());
    let part = part_path(tmp.path(), &source.files[0]);
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < a.len() as u64);

    // The server recovers: the next run asks only for the rest.
    server.serve("/tiny/a-idx3-ubyte.gz", &a);
    let before = server.requests().len();
    let (result, log) = run(&source, tmp.path());
    result.unwrap();
    let after = server.requests();
    assert_eq!(after[before].range_start, Some(kept), "{log}");
    assert_eq!(
        std::fs::read(tmp.path().join("a-idx3-ubyte.gz")).unwrap(),
        a
    );
    assert!(!part.exists());
}

#[test]
fn a_server_without_ranges_or_a_stale_part_means_starting_over() {
    let server = Server::start();
    let (a, b) = (idx_gz(20, 1), idx_gz(3, 2));
    let source = tiny(&server, &a, &b);
    let tmp = tempfile::tempdir().unwrap();
    // A part holding other bytes than the file's start: the resumed file fails its check and
    // the download starts over once.
    std::fs::write(part_path(tmp.path(), &source.files[0]), vec![0xEE; 10]).unwrap();
    // No range support for the second file: its stale part is overwritten by the 200 reply.
    server.serve_with("/tiny/b-idx3-ubyte.gz", &b, Fault::IgnoreRange);
    std::fs::write(part_path(tmp.path(), &source.files[1]), b"junk").unwrap();
    let (result, log) = run(&source, tmp.path());
    result.unwrap();
    assert!(log.contains("restarting a-idx3-ubyte.gz"), "{log}");
    let ranges: Vec<Option<u64>> = server.requests().iter().map(|r| r.range_start).collect();
    assert_eq!(ranges, [Some(10), None, Some(4)]);
    assert_eq!(
        std::fs::read(tmp.path().join("a-idx3-ubyte.gz")).unwrap(),
        a
    );
    assert_eq!(
        std::fs::read(tmp.path().join("b-idx3-ubyte.gz")).unwrap(),
        b
    );
    assert_eq!(names_in(tmp.path()), ["a-idx3-ubyte.gz", "b-idx3-ubyte.gz"]);
}

#[test]
fn a_404_names_the_url_and_the_next_mirror_is_tried() {
    let server = Server::start();
    let (a, b) = (idx_gz(2, 1), idx_gz(2, 2));
    let mut source = tiny(&server, &a, &b);
    source.mirrors = vec![server.url("gone")];
    let tmp = tempfile::tempdir().unwrap();
    let (result, _) = run(&source, tmp.path());
    let e = format!("{:#}", result.unwrap_err());
    let url = format!("{}a-idx3-ubyte.gz", server.url("gone"));
    assert!(e.contains(&format!("{url}: HTTP 404 Not Found")), "{e}");
    assert!(names_in(tmp.path()).is_empty());
    // One request only: a 404 is not retried.
    assert_eq!(server.requests().len(), 1);

    source.mirrors = vec![server.url("gone"), server.url("tiny")];
    let (result, log) = run(&source, tmp.path());
    assert_eq!(result.unwrap().downloaded, 2, "{log}");
    assert!(log.contains(&server.url("tiny")), "{log}");
}

#[test]
fn an_archive_is_unpacked_once_and_its_members_verified() {
    let batch = |k: u8| (0..3073 * 2).map(|i| (i as u8) ^ k).collect::<Vec<u8>>();
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("set/readme.html", b"<p>hello</p>".to_vec()),
        ("set/data_batch_1.bin", batch(1)),
        ("set/test_batch.bin", batch(2)),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    let archive = gzip(&tar.into_inner().unwrap());
    let server = Server::start();
    server.serve("/set/set.tar.gz", &archive);
    let member = |name: &str| Member {
        archive_path: format!("set/{name}"),
        name: name.to_string(),
    };
    let source = Source {
        name: "set".into(),
        mirrors: vec![server.url("set")],
        files: vec![
            FileSpec::new("set.tar.gz", &sha(&archive))
                .with_members(vec![member("data_batch_1.bin"), member("test_batch.bin")]),
        ],
    };
    let tmp = tempfile::tempdir().unwrap();
    let (result, log) = run(&source, tmp.path());
    assert_eq!(result.unwrap().unpacked, 2, "{log}");
    assert_eq!(
        names_in(tmp.path()),
        ["data_batch_1.bin", "set.tar.gz", "test_batch.bin"]
    );
    assert_eq!(
        std::fs::read(tmp.path().join("test_batch.bin")).unwrap(),
        batch(2)
    );
    let (result, _) = run(&source, tmp.path());
    assert_eq!(
        result.unwrap(),
        Fetched {
            downloaded: 0,
            present: 1,
            unpacked: 0
        }
    );
    assert_eq!(server.requests().len(), 1);

    // A damaged member is caught by verify and rewritten from the archive, with no download.
    let mut damaged = batch(1);
    damaged[100] ^= 1;
    std::fs::write(tmp.path().join("data_batch_1.bin"), &damaged).unwrap();
    let mut out = Vec::new();
    assert_eq!(verify::verify(&source, tmp.path(), &mut out).unwrap(), 1);
    let report = String::from_utf8(out).unwrap();
    assert!(report.contains("MISMATCH  data_batch_1.bin"), "{report}");
    let (result, log) = run(&source, tmp.path());
    assert_eq!(result.unwrap().unpacked, 1, "{log}");
    assert!(log.contains("differed from the archive"), "{log}");
    assert_eq!(server.requests().len(), 1);
    let mut out = Vec::new();
    assert_eq!(verify::verify(&source, tmp.path(), &mut out).unwrap(), 0);

    // An archive without a named member is an error that names it.
    let mut missing = source.clone();
    missing.files[0].members.push(member("data_batch_9.bin"));
    let e = archive::unpack(tmp.path(), &missing.files[0], &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("lacks set/data_batch_9.bin"), "{e}");
}

/// The repository's MNIST is re-compressed (gzip -9 -n), so its files differ from the
/// published ones: they pass by the sums of their contents, served and fetched with the real
/// MNIST checksum table.
#[test]
fn the_repository_mnist_copy_verifies_by_its_contents() {
    let bundled = crate::project_root().join("data/mnist");
    let server = Server::start();
    let source = Source::mnist().with_mirror(&server.url("mnist"));
    for spec in &source.files {
        let bytes = std::fs::read(bundled.join(&spec.name)).unwrap();
        server.serve(&format!("/mnist/{}", spec.name), &bytes);
    }
    let tmp = tempfile::tempdir().unwrap();
    let (result, log) = run(&source, tmp.path());
    assert_eq!(result.unwrap().downloaded, 4, "{log}");
    assert!(log.contains("gunzipped contents"), "{log}");
    let mut out = Vec::new();
    assert_eq!(
        verify::verify(&Source::mnist(), &bundled, &mut out).unwrap(),
        0
    );

    // An uncompressed copy is recognised too; a changed byte is not.
    let labels = &source.files[3];
    let gz = std::fs::read(tmp.path().join(&labels.name)).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut raw).unwrap();
    std::fs::remove_file(tmp.path().join(&labels.name)).unwrap();
    let raw_path = tmp.path().join("t10k-labels-idx1-ubyte");
    std::fs::write(&raw_path, &raw).unwrap();
    let verdict = verify::check_file(tmp.path(), labels).unwrap();
    assert!(matches!(verdict, verify::Verdict::Ok(_)), "{verdict:?}");
    raw[9] ^= 1;
    std::fs::write(&raw_path, &raw).unwrap();
    let verdict = verify::check_file(tmp.path(), labels).unwrap();
    assert!(matches!(verdict, verify::Verdict::Bad(_)), "{verdict:?}");
}

#[test]
fn arguments_parse_into_tasks() {
    let parse = |args: &[&str]| Task::parse(args.iter().map(|s| s.to_string()));
    match parse(&["fetch", "mnist", "--dir", "x", "--mirror", "http://h/m"]).unwrap() {
        Task::Fetch { source, dir } => {
            assert_eq!(source.mirrors, ["http://h/m/"]);
            assert_eq!(dir, Path::new("x"));
        }
        other => panic!("{other:?}"),
    }
    match parse(&["verify", "cifar10"]).unwrap() {
        Task::Verify { targets, required } => {
            assert!(required);
            assert!(targets[0].1.ends_with("data/cifar10"));
        }
        other => panic!("{other:?}"),
    }
    let bundled = crate::project_root().join("data/mnist");
    match parse(&["verify", "--dir", bundled.to_str().unwrap()]).unwrap() {
        Task::Verify { targets, .. } => assert_eq!(targets[0].0.name, "mnist"),
        other => panic!("{other:?}"),
    }
    for bad in [
        &["fetch"][..],
        &["fetch", "imagenet"],
        &["fetch", "mnist", "--dir"],
        &["verify", "--mirror", "u"],
        &["download", "mnist"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
    let e = parse(&["fetch", "imagenet"]).unwrap_err().to_string();
    assert!(e.contains("unknown data set `imagenet`"), "{e}");
}
