//! cryptmed-service (being written).
