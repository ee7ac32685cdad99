//! Remedy-only behaviour through the real libpam: the shared token cache.

mod support;
