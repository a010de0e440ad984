//! Offset pagination for metadata lists (small tables; data lists use keyset cursors).

use serde::Serialize;

/// A requested page: 1-based number and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Rows per page (at least 1; the caller bounds it, the server by its `max_page_size`).
    pub page_size: u32,
}

impl PageRequest {
    /// Default rows per page (the default of the server's `default_page_size`).
    pub const DEFAULT_SIZE: u32 = 20;
    /// The default largest page (the default of the server's `max_page_size`, and the command
    /// line's bound).
    pub const MAX_SIZE: u32 = 100;

    /// A page: page ≥ 1, size ≥ 1. The size is not capped here: the caller checked it against
    /// its own limit (a server configured for pages of 500 serves pages of 500).
    pub fn new(page: u32, page_size: u32) -> Self {
        Self {
            page: page.max(1),
            page_size: page_size.max(1),
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.page_size)
    }

    /// Rows to take.
    pub fn limit(&self) -> i64 {
        i64::from(self.page_size)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::new(1, Self::DEFAULT_SIZE)
    }
}

/// One page of results with the total count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Position and totals.
    pub meta: PageMeta,
}

/// Position and totals of a page, as every list shows them (SPEC §10:
/// `{ page, pageSize, total, totalPages, nextCursor }`; an offset page has no cursor, so
/// `nextCursor` is `null`, the shape of a data list's last page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMeta {
    /// 1-based page number.
    pub page: u32,
    /// Rows per page.
    pub page_size: u32,
    /// Rows in all pages.
    pub total: u64,
    /// Number of pages.
    pub total_pages: u64,
}

impl Serialize for PageMeta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut meta = serializer.serialize_struct("PageMeta", 5)?;
        meta.serialize_field("page", &self.page)?;
        meta.serialize_field("pageSize", &self.page_size)?;
        meta.serialize_field("total", &self.total)?;
        meta.serialize_field("totalPages", &self.total_pages)?;
        meta.serialize_field("nextCursor", &None::<&str>)?;
        meta.end()
    }
}

impl<T> Page<T> {
    /// Builds a page from its rows, the request and the total.
    pub fn new(data: Vec<T>, request: PageRequest, total: u64) -> Self {
        let size = u64::from(request.page_size);
        Self {
            data,
            meta: PageMeta {
                page: request.page,
                page_size: request.page_size,
                total,
                total_pages: total.div_ceil(size),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_clamped_and_counted() {
        let r = PageRequest::new(0, 0);
        assert_eq!((r.page, r.page_size), (1, 1));
        // The size is the caller's to bound (a server may allow pages of 500).
        assert_eq!(PageRequest::new(1, 500).limit(), 500);
        let p = Page::new(vec![1, 2], PageRequest::new(3, 10), 21);
        assert_eq!(p.meta.total_pages, 3);
        assert_eq!(PageRequest::new(3, 10).offset(), 20);
        assert_eq!(
            Page::<u8>::new(vec![], PageRequest::default(), 0)
                .meta
                .total_pages,
            0
        );
    }

    #[test]
    fn a_page_shows_the_list_shape_of_every_list() {
        let page = Page::new(vec!["a"], PageRequest::new(2, 1), 3);
        assert_eq!(
            serde_json::to_value(&page).unwrap_or_default(),
            serde_json::json!({
                "data": ["a"],
                "meta": { "page": 2, "pageSize": 1, "total": 3, "totalPages": 3, "nextCursor": null }
            })
        );
    }
}
