//! Relay-style connections over keyset pagination: `edges { cursor node }`, `nodes`,
//! `pageInfo`, and a `totalCount` computed only when selected.

use std::future::Future;

use async_graphql::{Context, SimpleObject};

use crate::db::pagination::{Cursor, MAX_PAGE_SIZE};
use crate::error::{AppError, AppResult};

/// Where a page sits in its list.
#[derive(SimpleObject, Clone, Debug)]
pub(crate) struct PageInfo {
    /// Whether more items follow this page.
    pub has_next_page: bool,
    /// Whether items precede this page (true whenever `after` was given).
    pub has_previous_page: bool,
    /// The cursor of the first item of the page.
    pub start_cursor: Option<String>,
    /// The cursor of the last item of the page: pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Counts every item of a list, across pages.
pub(crate) trait Totals: Send + Sync {
    /// The number of items.
    fn total_count(&self, ctx: &Context<'_>) -> impl Future<Output = AppResult<i64>> + Send;
}

/// Checks `first` and `after`: `first` in 0..=100, `after` a cursor we made. Returns the
/// limit to query (one more than `first`, to learn whether a next page exists).
pub(crate) fn arguments(
    first: Option<i32>,
    after: Option<&str>,
) -> AppResult<(i64, Option<Cursor>)> {
    let first = first.unwrap_or(20);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(format!(
            "first must be between 0 and {MAX_PAGE_SIZE}, got {first}"
        )));
    }
    let after = match after {
        Some(value) => Some(
            Cursor::decode(value)
                .ok_or_else(|| AppError::bad_input("after is not a cursor from this list"))?,
        ),
        None => None,
    };
    Ok((i64::from(first), after))
}

/// Cuts the `first + 1` rows fetched down to a page: the edges and the page info.
pub(crate) fn page<R, N>(
    mut rows: Vec<R>,
    first: i64,
    after: Option<Cursor>,
    cursor: impl Fn(&R) -> Cursor,
    mut node: impl FnMut(R) -> N,
) -> (Vec<(String, N)>, PageInfo) {
    let has_next_page = rows.len() as i64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(0));
    let edges: Vec<(String, N)> = rows
        .into_iter()
        .map(|row| (cursor(&row).encode(), node(row)))
        .collect();
    let info = PageInfo {
        has_next_page,
        has_previous_page: after.is_some(),
        start_cursor: edges.first().map(|(c, _)| c.clone()),
        end_cursor: edges.last().map(|(c, _)| c.clone()),
    };
    (edges, info)
}

/// Declares a connection type and its edge type for a node type.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $totals:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        pub(crate) struct $connection {
            edges: Vec<$edge>,
            page_info: $crate::graphql::connection::PageInfo,
            totals: $totals,
        }

        impl $connection {
            /// Builds a page from rows (see [`crate::graphql::connection::page`]).
            pub(crate) fn new(
                edges: Vec<(String, $node)>,
                page_info: $crate::graphql::connection::PageInfo,
                totals: $totals,
            ) -> Self {
                $connection {
                    edges: edges
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info,
                    totals,
                }
            }
        }

        #[doc = concat!("A page of ", $what, ".")]
        #[async_graphql::Object]
        impl $connection {
            /// The page's items, each with its cursor.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            /// The page's items, for clients that need no cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            /// Where this page sits in the list.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }
            /// How many items the whole list has, across all pages.
            async fn total_count(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<i64> {
                use $crate::graphql::connection::Totals;
                Ok(self.totals.total_count(ctx).await?)
            }
        }

        #[doc = concat!("An item of ", $what, ", with its cursor.")]
        pub(crate) struct $edge {
            cursor: String,
            node: $node,
        }

        #[doc = concat!("An item of ", $what, ", with its cursor.")]
        #[async_graphql::Object]
        impl $edge {
            /// Pass as `after` to continue after this item.
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            /// The item.
            async fn node(&self) -> &$node {
                &self.node
            }
        }
    };
}
pub(crate) use connection;
