//! What the figures are recorded with: the CPU model and the instruction-set path.

use anyhow::{Result, bail};

/// The SIMD path taken, by run-time detection unless `GANGLION_FORCE_ISA` names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit AVX-512F registers.
    Avx512,
    /// 256-bit AVX2 with FMA.
    Avx2Fma,
    /// Portable code, no explicit SIMD.
    Scalar,
}

impl Isa {
    /// The name printed and recorded with every figure.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2-fma",
            Isa::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best path this CPU has.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2Fma]
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Scalar)
    }

    /// The path to take: the one `GANGLION_FORCE_ISA` names (`scalar`, `avx2`, `avx512`) if
    /// set and non-empty, otherwise [`Isa::detect`].
    ///
    /// # Errors
    /// When the variable names an unknown path or one this CPU lacks.
    pub fn selected() -> Result<Isa> {
        match std::env::var("GANGLION_FORCE_ISA") {
            Ok(value) if !value.is_empty() => Isa::forced(&value),
            _ => Ok(Isa::detect()),
        }
    }

    fn forced(value: &str) -> Result<Isa> {
        let isa = match value {
            "scalar" => Isa::Scalar,
            "avx2" | "avx2-fma" => Isa::Avx2Fma,
            "avx512" => Isa::Avx512,
            other => bail!("GANGLION_FORCE_ISA={other}: expected scalar, avx2 or avx512"),
        };
        if !isa.available() {
            bail!("GANGLION_FORCE_ISA={value}: this CPU lacks {}", isa.name());
        }
        Ok(isa)
    }
}

/// The CPU model (`model name` of `/proc/cpuinfo`), or `unknown cpu` where there is none.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| model_name(&text))
        .unwrap_or_else(|| "unknown cpu".to_string())
}

fn model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_name_is_the_first_model_name_line() {
        let text =
            "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t: fpu\nmodel name\t: other\n";
        assert_eq!(model_name(text).as_deref(), Some("AMD EPYC 9R14"));
        assert_eq!(model_name("processor : 0\n"), None);
    }

    #[test]
    fn forcing_names_a_path_and_rejects_unknown_ones() {
        assert_eq!(Isa::forced("scalar").unwrap(), Isa::Scalar);
        assert!(Isa::forced("sse9").is_err());
        assert!(Isa::detect().available());
    }
}
