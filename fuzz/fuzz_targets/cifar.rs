//! The CIFAR-10 binary reader on arbitrary bytes: `Ok` only for whole 3073-byte records with
//! labels below 10, `Err` otherwise, never a panic.
#![no_main]

mod scratch;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch::file("data_batch_1.bin", data);
    if let Ok(set) = ganglion_data::read_cifar10_files(&[path]) {
        assert_eq!(set.len() * ganglion_data::CIFAR10_RECORD_LEN, data.len());
    }
});
