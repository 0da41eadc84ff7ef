//! verity's one integration-test binary (ripgrep's layout): one module per area.

mod cluster;
