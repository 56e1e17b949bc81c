//! `ganglion-data`: will own the MNIST/IDX and CIFAR-10 readers, seeded batching with a
//! prefetching worker, normalisation and augmentation.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
