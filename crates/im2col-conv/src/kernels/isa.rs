//! Which SIMD instruction set the kernels use: detected once per process, overridable with the
//! `GANGLION_FORCE_ISA` environment variable (`scalar`, `avx2`, `avx512`) and, for tests, per
//! call with [`with_isa`].

use std::cell::Cell;
use std::sync::OnceLock;

/// An instruction-set level the convolution kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, no explicit SIMD: the fallback on every CPU.
    Scalar,
    /// 256-bit AVX2 with fused multiply-add (16 `ymm` registers).
    Avx2Fma,
    /// 512-bit AVX-512F (32 `zmm` registers).
    Avx512,
}

impl Isa {
    /// Every level, from the most portable to the widest.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2Fma, Isa::Avx512];

    /// The name printed with benchmark figures: `scalar`, `avx2-fma` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2Fma => "avx2-fma",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the level.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The levels this CPU can run, scalar first.
    pub fn available_levels() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.available()).collect()
    }

    /// The widest level this CPU can run.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.available())
            .unwrap_or(Isa::Scalar)
    }

    /// Parses a `GANGLION_FORCE_ISA` value (`scalar`, `avx2`, `avx2-fma`, `avx512`).
    pub fn parse(value: &str) -> Option<Isa> {
        match value.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" | "avx2-fma" | "avx2fma" => Some(Isa::Avx2Fma),
            "avx512" | "avx512f" => Some(Isa::Avx512),
            _ => None,
        }
    }
}

/// The process-wide level: `GANGLION_FORCE_ISA` when it names a level this CPU has, otherwise
/// the widest one detected. A value naming an unknown level or one the CPU lacks falls back to
/// detection with a warning on standard error (it never runs instructions the CPU lacks).
fn process_isa() -> Isa {
    static SELECTED: OnceLock<Isa> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let detected = Isa::detect();
        match std::env::var("GANGLION_FORCE_ISA") {
            Ok(value) if !value.trim().is_empty() => match Isa::parse(&value) {
                Some(isa) if isa.available() => isa,
                Some(isa) => {
                    eprintln!(
                        "warning: GANGLION_FORCE_ISA={value}: this CPU lacks {}, using {}",
                        isa.name(),
                        detected.name()
                    );
                    detected
                }
                None => {
                    eprintln!(
                        "warning: GANGLION_FORCE_ISA={value} is not one of scalar, avx2, \
                         avx512; using {}",
                        detected.name()
                    );
                    detected
                }
            },
            _ => detected,
        }
    })
}

thread_local! {
    /// A level forced for calls made from this thread by [`with_isa`].
    static OVERRIDE: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// The level the next convolution call made from this thread uses.
pub fn current_isa() -> Isa {
    OVERRIDE.with(Cell::get).unwrap_or_else(process_isa)
}

/// Name of the level the next convolution call made from this thread uses (`scalar`,
/// `avx2-fma` or `avx512`), for benchmark and self-test labels.
pub fn isa_name() -> &'static str {
    current_isa().name()
}

/// Runs `f` with the convolution kernels called from this thread forced to `isa` (work they
/// hand to the rayon pool follows the same level), then restores the previous choice, even if
/// `f` panics. Meant for tests and benchmarks that compare levels within one process.
///
/// # Panics
/// If this CPU cannot run `isa` (see [`Isa::available`]).
pub fn with_isa<T>(isa: Isa, f: impl FnOnce() -> T) -> T {
    assert!(
        isa.available(),
        "with_isa: this CPU cannot run the {} kernels",
        isa.name()
    );
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(OVERRIDE.with(|o| o.replace(Some(isa))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for isa in Isa::ALL {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse("AVX2"), Some(Isa::Avx2Fma));
        assert_eq!(Isa::parse("sse9"), None);
        assert!(Isa::detect().available());
        assert_eq!(Isa::available_levels()[0], Isa::Scalar);
    }

    #[test]
    fn with_isa_overrides_and_restores() {
        let before = current_isa();
        with_isa(Isa::Scalar, || {
            assert_eq!(current_isa(), Isa::Scalar);
            assert_eq!(isa_name(), "scalar");
        });
        assert_eq!(current_isa(), before);
        let caught = std::panic::catch_unwind(|| with_isa(Isa::Scalar, || panic!("inner")));
        assert!(caught.is_err());
        assert_eq!(current_isa(), before);
    }
}
