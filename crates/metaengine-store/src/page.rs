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

/// Position and totals of a page, as lists show them (`{ page, pageSize, total, totalPages }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
}
