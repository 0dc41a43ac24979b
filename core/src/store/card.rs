//! The public grid card on the device, from the reference document it holds (the same
//! data the server's public page shows).

use super::Store;
use crate::card::GridCard;
use crate::model::GridCode;
use crate::{Error, Result};

impl Store {
    /// A grid's public card (name, kind, area, posted staff, supervision phone) as the
    /// server last published it: any grid of the reference document, not only the
    /// device's own. `UnknownGrid` before the first sync or for a grid the server does
    /// not know.
    pub fn grid_card(&self, code: &GridCode) -> Result<GridCard> {
        let meta = self.reference_grid(code.as_str())?.ok_or_else(|| Error::UnknownGrid { grid: code.to_string() })?;
        Ok(GridCard::from_meta(code.clone(), &meta))
    }
}
