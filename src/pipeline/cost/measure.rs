//! What an operation costs: the weights of the cost model and the measure they add up to.

/// Cost of a field that runs a database query.
pub const DATABASE_FIELD_COST: u64 = 10;
/// Rows assumed for a list without a page size (meters, credit packs).
pub const LIST_ESTIMATE: u64 = 10;
/// Rows of a connection without `first`: its default page size.
pub const DEFAULT_PAGE: u64 = 20;
/// Largest page a list argument can ask for (larger is refused by the resolver).
pub const MAX_PAGE: u64 = 100;

/// An admitted operation's measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measure {
    /// Fields after fragment expansion.
    pub fields: u64,
    /// Weighted cost (see the module docs).
    pub cost: u64,
    /// Whether the document selects any of the viewer's state read with the session
    /// (`Viewer.subscription`, `credits`, `usage`): if not, the lean session lookup serves it.
    pub viewer_state: bool,
}

impl Measure {
    pub(super) const ZERO: Measure = Measure {
        fields: 0,
        cost: 0,
        viewer_state: false,
    };

    pub(super) fn add(self, other: Measure) -> Measure {
        Measure {
            fields: self.fields.saturating_add(other.fields),
            cost: self.cost.saturating_add(other.cost),
            viewer_state: self.viewer_state || other.viewer_state,
        }
    }
}

/// A fragment on a connection measured with the default page, rescaled to `page`: only
/// approximately (the fragment's per-row part cannot be told from its per-page part here), so
/// it is scaled up whole when the page is larger, and left as is when smaller.
pub(super) fn scale_page(measure: Measure, page: u64) -> Measure {
    if page <= DEFAULT_PAGE {
        return measure;
    }
    Measure {
        cost: measure.cost.saturating_mul(page).div_ceil(DEFAULT_PAGE),
        ..measure
    }
}
