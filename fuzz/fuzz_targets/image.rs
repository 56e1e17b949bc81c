//! Image decoding as `ganglion predict` does it, on arbitrary bytes: PNG or JPEG to grey 28x28
//! or RGB 32x32, inverted or not, under the default limits. Decoding must fail cleanly, not
//! panic or allocate what the header merely claims.
#![no_main]

use ganglion_data::{DecodeLimits, decode_image};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, content)) = data.split_first() else {
        return;
    };
    let shape = if mode & 1 == 0 {
        [1, 28, 28]
    } else {
        [3, 32, 32]
    };
    let invert = mode & 2 != 0;
    let limits = DecodeLimits::default();
    if let Ok(pixels) = decode_image(content, Path::new("fuzz.png"), shape, invert, &limits) {
        assert_eq!(pixels.len(), shape.iter().product::<usize>());
    }
});
