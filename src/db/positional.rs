//! Rows of `sql_query` read by position, for the session lookup's wide row.

/// A row of `sql_query` read by position. diesel reads such rows by column name, a linear
/// search per field: for the session lookup's 46 columns, most of its decoding on every request. Fields
/// are read in their declared order, which is the statement's column order; each column's name
/// is still compared, and a mismatch falls back to the search, so a statement whose columns
/// were reordered is slower, never wrong.
macro_rules! positional_row {
    (struct $name:ident { $($field:ident: $st:ty => $ty:ty,)* }) => {
        struct $name {
            $($field: $ty,)*
        }

        impl diesel::deserialize::QueryableByName<diesel::pg::Pg> for $name {
            fn build<'a>(
                row: &impl diesel::row::NamedRow<'a, diesel::pg::Pg>,
            ) -> diesel::deserialize::Result<Self> {
                let mut index = 0;
                Ok($name {
                    $($field: $crate::db::positional::column::<$st, $ty>(row, &mut index, stringify!($field))?,)*
                })
            }
        }
    };
}

/// The column at `*index` (then the next), if it is named `name`; else the one named `name`.
pub(crate) fn column<'a, ST, T>(
    row: &impl diesel::row::NamedRow<'a, diesel::pg::Pg>,
    index: &mut usize,
    name: &str,
) -> diesel::deserialize::Result<T>
where
    T: diesel::deserialize::FromSql<ST, diesel::pg::Pg>,
{
    use diesel::row::{Field, NamedRow, Row};
    let at = *index;
    *index += 1;
    match Row::get(row, at) {
        Some(field) if field.field_name() == Some(name) => T::from_nullable_sql(field.value()),
        _ => {
            // Tests run debug builds: a statement whose order drifted from its row's fails them.
            debug_assert!(
                false,
                "column {name} is not at position {at} of the statement"
            );
            NamedRow::get::<ST, T>(row, name)
        }
    }
}

pub(crate) use positional_row;
