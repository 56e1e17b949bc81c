//! The safetensors model loader on arbitrary bytes: names, shapes, dtypes, offsets and
//! metadata. Loading into a small model (a linear layer and a batch norm, so F32 tensors and
//! an I64 counter) must succeed or fail cleanly; so must reading the metadata alone from a
//! file and rebuilding a zoo model from the file's own metadata (architecture, input shape).
#![no_main]

mod scratch;

use ganglion_models::layers::{BatchNorm2d, Linear, Sequential};
use ganglion_tensor::Rng;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn model() -> &'static Sequential {
    static MODEL: OnceLock<Sequential> = OnceLock::new();
    MODEL.get_or_init(|| {
        let mut rng = Rng::seed_from(0);
        Sequential::new()
            .push(Linear::new(3, 2, true, &mut rng))
            .push(BatchNorm2d::new(2))
    })
}

fuzz_target!(|data: &[u8]| {
    let model = model();
    if ganglion_models::load_from_bytes(model, data, "fuzz.safetensors").is_ok() {
        // A file that loads covers the model's state exactly.
        let bytes = ganglion_models::to_bytes(model, &ganglion_models::ModelMeta::default())
            .expect("a loaded model serialises");
        assert!(ganglion_models::load_from_bytes(model, &bytes, "again").is_ok());
    }
    let path = scratch::file("model.safetensors", data);
    let _ = ganglion_models::read_meta(&path);
    let _ = ganglion_models::load(&path, None);
});
