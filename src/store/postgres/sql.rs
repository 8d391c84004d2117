//! How a statement reaches the server, on a direct connection or behind a transaction
//! pooler (PgBouncer in `pool_mode = transaction`).
//!
//! On a direct connection a statement is prepared once per connection and cached
//! ([`Statements::Cached`]): each execution is then one round trip without a parse.
//! Behind a transaction pooler that cache is wrong: the next transaction may run on
//! another server connection, which never saw the statement, and a named statement
//! prepared outside a transaction may be executed on another connection than the one it
//! was prepared on. There every statement that is not inside a transaction, and every
//! statement reused across transactions, is sent unnamed ([`Statements::Unnamed`]:
//! parse, bind and execute in one round trip, leaving nothing on the server).
//!
//! A statement used once inside one transaction (`tx.query("…")`) is safe either way:
//! its prepare, execution and close all go to the transaction's server connection.

use async_trait::async_trait;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Error, Row};

/// One parameter and its type (an unnamed statement needs the types up front).
pub type Param<'a> = (&'a (dyn ToSql + Sync), Type);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statements {
    Cached,
    Unnamed,
}

/// A connection or a transaction that can run both ways.
#[async_trait]
pub trait Run: deadpool_postgres::GenericClient {
    async fn unnamed(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error>;
}

#[async_trait]
impl Run for deadpool_postgres::Object {
    async fn unnamed(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.query_typed(sql, params).await
    }
}

#[async_trait]
impl Run for deadpool_postgres::Transaction<'_> {
    async fn unnamed(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, Error> {
        self.query_typed(sql, params).await
    }
}

impl Statements {
    /// The rows of `sql`.
    pub async fn rows<C: Run>(
        self,
        c: &C,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        match self {
            Statements::Unnamed => c.unnamed(sql, params).await,
            Statements::Cached => {
                let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
                let statement = c.prepare_typed_cached(sql, &types).await?;
                let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(v, _)| *v).collect();
                c.query(&statement, &values).await
            }
        }
    }

    /// The row of `sql`, if any.
    pub async fn opt<C: Run>(
        self,
        c: &C,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, Error> {
        Ok(self.rows(c, sql, params).await?.into_iter().next())
    }

    /// Runs `sql` and returns the rows it changed (`sql` must end in `RETURNING 1`
    /// when it changes rows whose count matters: an unnamed statement reports rows
    /// returned, not rows affected).
    pub async fn exec<C: Run>(self, c: &C, sql: &str, params: &[Param<'_>]) -> Result<u64, Error> {
        Ok(self.rows(c, sql, params).await?.len() as u64)
    }
}
