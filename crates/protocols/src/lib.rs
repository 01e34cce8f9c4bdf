//! cryptmed-protocols (being written).
