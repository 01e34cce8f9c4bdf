//! Revealing shared values to the client only: the provider sends its
//! shares (8 bytes per element, one way); the client adds its own.

use cryptmed_ring::Elem;
use cryptmed_share::open::{recv_elems, send_elems};

use crate::cost::{Cost, Trace};
use crate::{Ctx, ProtocolError};

/// The clear values for the client, `None` for the provider.
pub fn to_client(ctx: &mut Ctx<'_>, x: &[Elem]) -> Result<Option<Vec<Elem>>, ProtocolError> {
    if ctx.lead() {
        send_elems(ctx.ch, x)?;
        ctx.ch.flush()?;
        Ok(None)
    } else {
        let theirs = recv_elems(ctx.ch, x.len())?;
        Ok(Some(cryptmed_ring::add(x, &theirs)))
    }
}

/// The communication of [`to_client`] on `n` elements.
pub fn trace(n: usize) -> Trace {
    Trace::provider_to_client(8 * n as u64)
}

/// Closed-form cost of [`to_client`]: `8 n` bytes one way, 1 round.
pub const fn cost(n: usize) -> Cost {
    Cost::new(8 * n as u64, 1)
}
