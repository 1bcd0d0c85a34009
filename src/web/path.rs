//! `Path<T>`: a path parameter whose parse failure names the parameter.
//!
//! poem-openapi renames path variables to `param0`, `param1`… internally and
//! reports that name when parsing fails; a caller needs the documented one.
//! (The type must be called `Path`: poem-openapi's macro recognises path
//! parameters by that name.)

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaParamIn, MetaSchemaRef, Registry},
    types::Type,
};

use super::schema::FromParam;
use crate::problem::Problem;

/// The documented name of a path parameter of this type.
pub trait PathParamName {
    const NAME: &'static str;
}

pub struct Path<T>(pub T);

impl<'a, T> ApiExtractor<'a> for Path<T>
where
    T: Type + FromParam + PathParamName + Send,
{
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];
    const PARAM_IS_REQUIRED: bool = true;

    type ParamType = T;
    type ParamRawType = T::RawValueType;

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Path)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(T::schema_ref())
    }

    fn param_raw_type(&self) -> Option<&Self::ParamRawType> {
        self.0.as_raw_value()
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let raw = request.raw_path_param(param_opts.name).unwrap_or_default();
        T::from_param(raw)
            .map(Self)
            .map_err(|why| Problem::invalid_field(T::NAME, why).into())
    }
}
