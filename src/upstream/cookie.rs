//! TODO(upstream helper)
