//! The IDX reader on arbitrary bytes, raw or gzip, through all three entry points: it must
//! return `Ok` or `Err`, never panic, and never allocate more than the file can justify.
#![no_main]

mod scratch;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, content)) = data.split_first() else {
        return;
    };
    let path = scratch::file("input.idx", content);
    match mode % 3 {
        0 => {
            if let Ok(a) = ganglion_data::read_idx(&path) {
                assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
        }
        1 => {
            if let Ok(i) = ganglion_data::read_idx_images(&path) {
                assert_eq!(i.pixels.len(), i.count * i.rows * i.cols);
            }
        }
        _ => {
            let _ = ganglion_data::read_idx_labels(&path);
        }
    }
});
