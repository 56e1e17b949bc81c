//! Hostile headers: files whose headers claim far more data than they hold (an IDX file of
//! 4 billion images, a safetensors header of 2^63 bytes, tensor offsets past the end, a PNG or
//! JPEG of 100000x100000 pixels, model metadata asking for 60 million input channels) are
//! refused with a message naming the file, quickly, with the peak memory of the process
//! (measured by `/usr/bin/time`) staying small.
#![cfg(target_os = "linux")]

use ganglion::models::{self, ModelMeta};
use ganglion::tensor::Rng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Far below what any of the claims would take (gigabytes to terabytes), well above what the
/// process needs to read the files and fail (about 10 MiB).
const PEAK_LIMIT_KB: u64 = 64 * 1024;

/// What a run of the CLI did: its status, stderr, peak resident memory and wall time.
struct Measured {
    success: bool,
    stderr: String,
    peak_kb: u64,
    elapsed: Duration,
}

/// Runs `ganglion args` under `/usr/bin/time`, which reports the child's peak resident set.
fn measured(args: &[&str], cwd: &Path) -> Measured {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "these tests read peak memory with /usr/bin/time (Debian package `time`)"
    );
    let report = tempfile::NamedTempFile::new().unwrap();
    let start = Instant::now();
    let out = Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_ganglion"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let report = std::fs::read_to_string(report.path()).unwrap();
    let peak_kb = report
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no peak memory in {report:?}"));
    Measured {
        success: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        peak_kb,
        elapsed,
    }
}

/// Runs `args` and checks it fails cleanly, naming `name`, in little time and memory.
fn refused(args: &[&str], cwd: &Path, name: &str, want: &[&str]) -> String {
    let m = measured(args, cwd);
    assert!(!m.success, "{args:?} succeeded");
    assert!(m.stderr.starts_with("error:"), "{args:?}: {}", m.stderr);
    assert!(!m.stderr.contains("panicked"), "{args:?}: {}", m.stderr);
    assert!(m.stderr.contains(name), "{args:?}: {}", m.stderr);
    assert_eq!(
        m.stderr.matches(name).count(),
        1,
        "{args:?}: the file is named once: {}",
        m.stderr
    );
    for w in want {
        assert!(
            m.stderr.contains(w),
            "{args:?}: wanted {w:?} in {}",
            m.stderr
        );
    }
    assert!(
        m.peak_kb < PEAK_LIMIT_KB,
        "{args:?}: peak memory {} KiB",
        m.peak_kb
    );
    assert!(
        m.elapsed < Duration::from_secs(10),
        "{args:?}: {:?}",
        m.elapsed
    );
    eprintln!(
        "{args:?}: refused in {:?} at {} KiB peak: {}",
        m.elapsed,
        m.peak_kb,
        m.stderr.trim()
    );
    m.stderr
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(payload);
    out
}

#[test]
fn an_idx_header_of_four_billion_images_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for gzip in [false, true] {
        let dir = tmp.path().join(if gzip { "gz" } else { "raw" });
        std::fs::create_dir(&dir).unwrap();
        // Small valid files for the rest of the set, so only the forged one matters.
        let write = |name: &str, bytes: Vec<u8>| {
            let (name, bytes) = if gzip {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut enc, &bytes).unwrap();
                (format!("{name}.gz"), enc.finish().unwrap())
            } else {
                (name.to_string(), bytes)
            };
            std::fs::write(dir.join(name), bytes).unwrap();
        };
        write(
            "train-images-idx3-ubyte",
            idx(&[4_000_000_000, 28, 28], &[7; 4096]),
        );
        write("train-labels-idx1-ubyte", idx(&[2], &[1, 2]));
        write("t10k-images-idx3-ubyte", idx(&[2, 28, 28], &[0; 2 * 784]));
        write("t10k-labels-idx1-ubyte", idx(&[2], &[3, 4]));
        let data = dir.to_string_lossy().into_owned();
        let out = tmp.path().join("run").to_string_lossy().into_owned();
        refused(
            &["train", "--no-progress", "--data", &data, "--out", &out],
            tmp.path(),
            "train-images-idx3-ubyte",
            &["4000000000 images of 28x28"],
        );
    }
}

/// A valid lenet5 weights file and a valid 28x28 PNG in `dir`.
fn weights_and_image(dir: &Path) -> (PathBuf, PathBuf) {
    let model = models::lenet5(&mut Rng::seed_from(0));
    let weights = dir.join("lenet5.safetensors");
    models::save(&model, &ModelMeta::for_model(&model), &weights).unwrap();
    let png = dir.join("digit.png");
    image::GrayImage::new(28, 28).save(&png).unwrap();
    (weights, png)
}

fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn forged_safetensors_headers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, png) = weights_and_image(tmp.path());
    let png = png.to_string_lossy().into_owned();
    let mut huge_len = (1u64 << 63).to_le_bytes().to_vec();
    huge_len.extend(b"{}");
    let past_end = safetensors(
        r#"{"conv1.weight":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#,
        &[0; 16],
    );
    let channels = safetensors(
        r#"{"__metadata__":{"ganglion.architecture":"allconv","ganglion.input_shape":"60000000,1,1"}}"#,
        b"",
    );
    let side = safetensors(
        r#"{"__metadata__":{"ganglion.architecture":"lenet5","ganglion.input_shape":"1,100000,100000"}}"#,
        b"",
    );
    // The reader's message quotes the JSON parser's; it must not be printed twice.
    let json = safetensors(r#"{"conv1.weight":1}"#, b"");
    for (name, bytes, want) in [
        ("huge-header.safetensors", huge_len, "header"),
        (
            "past-end.safetensors",
            past_end,
            "not a valid safetensors file",
        ),
        ("channels.safetensors", channels, "conv1.weight"),
        ("side.safetensors", side, "ganglion.input_shape"),
        ("json.safetensors", json, "invalid JSON in header"),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_string_lossy().into_owned();
        let stderr = refused(&["eval", "--weights", &path], tmp.path(), name, &[want]);
        // The JSON parser's message (which names the line and column) appears once.
        assert!(stderr.matches(" column ").count() <= 1, "{name}: {stderr}");
        refused(
            &["predict", "--weights", &path, &png],
            tmp.path(),
            name,
            &[want],
        );
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG with a valid signature, header chunk (checksum included) and a tiny data chunk,
/// declaring `w x h` grey pixels.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut c = (body.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(body);
        let mut crc_input = kind.to_vec();
        crc_input.extend(body);
        c.extend(crc32(&crc_input).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: far fewer rows than declared.
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// A valid 16x16 JPEG whose frame header is then rewritten to declare `w x h`.
fn jpeg_declaring(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut bytes)
        .encode(&[128u8; 256], 16, 16, image::ExtendedColorType::L8)
        .unwrap();
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let sof = bytes
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .expect("a baseline JPEG has an SOF0 marker");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn images_declaring_ten_billion_pixels_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (weights, png) = weights_and_image(tmp.path());
    let weights = weights.to_string_lossy().into_owned();
    // The honest image is accepted, in the same memory budget.
    let ok = measured(
        &["predict", "--weights", &weights, &png.to_string_lossy()],
        tmp.path(),
    );
    assert!(ok.success, "{}", ok.stderr);
    assert!(ok.peak_kb < PEAK_LIMIT_KB, "{} KiB", ok.peak_kb);

    std::fs::write(tmp.path().join("huge.png"), png_declaring(100_000, 100_000)).unwrap();
    std::fs::write(tmp.path().join("huge.jpg"), jpeg_declaring(65_000, 65_000)).unwrap();
    for name in ["huge.png", "huge.jpg"] {
        refused(
            &["predict", "--weights", &weights, name],
            tmp.path(),
            name,
            &[],
        );
    }
}
