//! cryptmed-share (being written).
