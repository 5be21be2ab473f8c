//! The media crate's tests (one binary; submodules per subject).

mod rtp;
