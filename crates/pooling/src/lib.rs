//! `ganglion-pooling`: max, average and global average pooling, forward and backward (being built).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
