//! `CatalogService`: REST's `GET /api/v1/events` and `/events/{id}`, over the same handlers.

use axum::extract::State;
use boxoffice_proto::v1::{self as pb, catalog_service_server::CatalogService};
use tonic::{Request, Response, Status};

use super::{convert, measured, status};
use crate::http::{
    AppState,
    catalog::{self, EventSearch},
    error::{ApiPath, ApiQuery},
    extract::PageParams,
};

pub struct Catalog(pub AppState);

/// REST's paging parameters from a request's (0 = the default size).
pub fn page(limit: u32, next_token: Option<String>, previous_token: Option<String>) -> PageParams {
    PageParams { limit: (limit > 0).then(|| limit.to_string()), next_token, previous_token }
}

#[tonic::async_trait]
impl CatalogService for Catalog {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        measured("CatalogService/ListEvents", async {
            let r = request.into_inner();
            let category =
                r.category.as_deref().filter(|c| !c.is_empty()).map(|c| convert::id("category", c)).transpose()?;
            let search = EventSearch {
                q: r.q,
                category,
                from: r.from.as_ref().map(|t| convert::instant("from", t)).transpose()?,
                to: r.to.as_ref().map(|t| convert::instant("to", t)).transpose()?,
                page: page(r.limit, r.next_token, r.previous_token),
            };
            let answer = catalog::list_events(State(self.0.clone()), ApiQuery(search)).await.map_err(status)?;
            Ok(Response::new(convert::events(convert::body(answer).await?)))
        })
        .await
    }

    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<Response<pb::Event>, Status> {
        measured("CatalogService/GetEvent", async {
            let id = convert::id("id", &request.into_inner().id)?;
            let answer = catalog::read_event(State(self.0.clone()), ApiPath(id)).await.map_err(status)?;
            Ok(Response::new(convert::event(convert::body(answer).await?)))
        })
        .await
    }
}
