//! What the figures are recorded with: the CPU model and the instruction-set path.

use anyhow::{Result, bail};

/// The SIMD paths, as the convolution kernels define and detect them.
pub use ganglion_im2col_conv::kernels::Isa;

/// The path to take: the one `GANGLION_FORCE_ISA` names (`scalar`, `avx2`, `avx512`) if set
/// and non-empty, otherwise [`Isa::detect`].
///
/// # Errors
/// When the variable names an unknown path or one this CPU lacks (the kernels would fall back
/// with a warning; a benchmark must not silently measure another path).
pub fn selected_isa() -> Result<Isa> {
    match std::env::var("GANGLION_FORCE_ISA") {
        Ok(value) if !value.is_empty() => forced(&value),
        _ => Ok(Isa::detect()),
    }
}

fn forced(value: &str) -> Result<Isa> {
    let Some(isa) = Isa::parse(value) else {
        bail!("GANGLION_FORCE_ISA={value}: expected scalar, avx2 or avx512");
    };
    if !isa.available() {
        bail!("GANGLION_FORCE_ISA={value}: this CPU lacks {}", isa.name());
    }
    Ok(isa)
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
        assert_eq!(forced("scalar").unwrap(), Isa::Scalar);
        assert!(forced("sse9").is_err());
        assert!(Isa::detect().available());
    }
}
