//! The data sets `cargo xtask data` knows: where each file is downloaded from (the canonical
//! location first, then documented mirrors), the SHA-256 sums that every file must match, and
//! which members of an archive are unpacked.
//!
//! The sums are the published files' SHA-256. MNIST also records the SHA-256 of each file's
//! gunzipped contents, so a re-compressed copy (the repository's own `data/mnist` is one, made
//! with `gzip -9 -n`) verifies by what it holds rather than by how it was compressed.

/// One file of a data set, as served by every mirror under the same name and stored under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// The file name at the source and on disk (`train-images-idx3-ubyte.gz`).
    pub name: String,
    /// SHA-256 of the file as published, lowercase hex.
    pub sha256: Option<String>,
    /// SHA-256 of the gunzipped contents, for `.gz` files: accepts any re-compression.
    pub content_sha256: Option<String>,
    /// Members unpacked from this file when it is a `.tar.gz` archive.
    pub members: Vec<Member>,
}

/// A member of a `.tar.gz` archive that is unpacked next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path inside the archive (`cifar-10-batches-bin/data_batch_1.bin`).
    pub archive_path: String,
    /// Its name on disk, in the data set's directory (`data_batch_1.bin`).
    pub name: String,
}

/// A data set: its files and where to get them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name on the command line (`mnist`).
    pub name: String,
    /// Base URLs, each ending in `/`, tried in order; a file's URL is base + file name.
    pub mirrors: Vec<String>,
    /// The files.
    pub files: Vec<FileSpec>,
}

/// The data sets `fetch` and `verify` know, in the order `verify` checks them.
pub const NAMES: [&str; 3] = ["mnist", "fashion-mnist", "cifar10"];

impl FileSpec {
    /// A file checked by its published SHA-256.
    pub fn new(name: &str, sha256: &str) -> Self {
        Self {
            name: name.to_string(),
            sha256: Some(sha256.to_string()),
            content_sha256: None,
            members: Vec::new(),
        }
    }

    /// The same file also accepted when its gunzipped contents have this SHA-256.
    pub fn with_content_sha256(mut self, sha256: &str) -> Self {
        self.content_sha256 = Some(sha256.to_string());
        self
    }

    /// The same file with members to unpack (it must then be a `.tar.gz` archive).
    pub fn with_members(mut self, members: Vec<Member>) -> Self {
        self.members = members;
        self
    }

    /// The name of the same content stored uncompressed (`.gz` dropped), when its contents'
    /// sum is known; the IDX readers accept either form.
    pub fn raw_name(&self) -> Option<&str> {
        self.content_sha256.as_ref()?;
        self.name.strip_suffix(".gz")
    }
}

impl Source {
    /// The data set called `name` (one of [`NAMES`]).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "mnist" => Some(Self::mnist()),
            "fashion-mnist" => Some(Self::fashion_mnist()),
            "cifar10" => Some(Self::cifar10()),
            _ => None,
        }
    }

    /// MNIST: the four gzip IDX files from torchvision's mirror, then Google's CVDF mirror
    /// (yann.lecun.com, the original home, now refuses most automated downloads).
    pub fn mnist() -> Self {
        let file = |name: &str, sha256: &str, content: &str| {
            FileSpec::new(name, sha256).with_content_sha256(content)
        };
        Self {
            name: "mnist".into(),
            mirrors: vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
                "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
            ],
            files: vec![
                file(
                    "train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                file(
                    "train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                file(
                    "t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                file(
                    "t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            ],
        }
    }

    /// Fashion-MNIST (Zalando Research): the four gzip IDX files from the project's S3
    /// website, then its GitHub repository. Their MD5s, as published by the project and
    /// torchvision, are 8d4fb7e6c68d591d4c3dfef9ec88bf0d, 25c81989df183df01b3e8a0aad5dffbe,
    /// bef4ecab320f06d8554ea6380940ec79 and bb300cfdad3c16e7a12a480ee83cd310; the SHA-256
    /// sums below identify the same files.
    pub fn fashion_mnist() -> Self {
        Self {
            name: "fashion-mnist".into(),
            mirrors: vec![
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/".into(),
                "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/".into(),
            ],
            files: vec![
                FileSpec::new(
                    "train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                ),
                FileSpec::new(
                    "train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                ),
                FileSpec::new(
                    "t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                ),
                FileSpec::new(
                    "t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ),
            ],
        }
    }

    /// CIFAR-10, binary version, from its authors' page at the University of Toronto
    /// (170,052,171 bytes; MD5 c32a1d4ab5d03f1284b67883e8d87530 as published there). The
    /// archive is kept and its six batch files unpacked beside it.
    pub fn cifar10() -> Self {
        let member = |name: &str| Member {
            archive_path: format!("cifar-10-batches-bin/{name}"),
            name: name.to_string(),
        };
        let mut members: Vec<Member> = (1..=5)
            .map(|i| member(&format!("data_batch_{i}.bin")))
            .collect();
        members.push(member("test_batch.bin"));
        members.push(member("batches.meta.txt"));
        Self {
            name: "cifar10".into(),
            mirrors: vec!["https://www.cs.toronto.edu/~kriz/".into()],
            files: vec![
                FileSpec::new(
                    "cifar-10-binary.tar.gz",
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                )
                .with_members(members),
            ],
        }
    }

    /// The same data set downloaded from `base` only (a local or institutional mirror).
    pub fn with_mirror(mut self, base: &str) -> Self {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        self.mirrors = vec![base];
        self
    }

    /// The URLs of file `name`, one per mirror, in the order they are tried.
    pub fn urls(&self, name: &str) -> Vec<String> {
        self.mirrors.iter().map(|m| format!("{m}{name}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_file_has_a_well_formed_sha256() {
        for name in NAMES {
            let source = Source::by_name(name).unwrap();
            assert_eq!(source.name, name);
            assert!(!source.mirrors.is_empty());
            for m in &source.mirrors {
                assert!(m.starts_with("http") && m.ends_with('/'), "{m}");
            }
            for f in &source.files {
                for sum in f.sha256.iter().chain(&f.content_sha256) {
                    assert_eq!(sum.len(), 64, "{}", f.name);
                    assert!(
                        sum.bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    );
                }
                assert!(f.sha256.is_some(), "{} has no published sum", f.name);
            }
        }
        assert!(Source::by_name("imagenet").is_none());
    }

    #[test]
    fn a_mirror_replaces_the_list_and_gains_a_slash() {
        let s = Source::mnist().with_mirror("http://127.0.0.1:8000/mnist");
        assert_eq!(
            s.urls("a.gz"),
            vec!["http://127.0.0.1:8000/mnist/a.gz".to_string()]
        );
        assert_eq!(
            Source::mnist().files[0].raw_name(),
            Some("train-images-idx3-ubyte")
        );
        assert_eq!(Source::cifar10().files[0].raw_name(), None);
        assert_eq!(Source::cifar10().files[0].members.len(), 7);
    }
}
