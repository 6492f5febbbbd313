import grpc
import pytest

from pylotto.core import errors


@pytest.mark.parametrize(
    ("error", "code", "http"),
    [
        (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.NotConfigured, grpc.StatusCode.FAILED_PRECONDITION, 500),
        (errors.ComponentNotFound, grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.EtagMismatch, grpc.StatusCode.ABORTED, 409),
        (errors.EtagInvalid, grpc.StatusCode.INVALID_ARGUMENT, 400),
        (errors.Unavailable, grpc.StatusCode.UNAVAILABLE, 503),
        (errors.Unsupported, grpc.StatusCode.UNIMPLEMENTED, 501),
        (errors.NotFound, grpc.StatusCode.NOT_FOUND, 404),
    ],
)
def test_one_table_maps_errors(error: type[errors.PylottoError], code: grpc.StatusCode,
                               http: int) -> None:
    assert errors.grpc_code(error("x")) == code
    assert errors.http_status(error("x")) == http


def test_every_error_class_is_in_the_table() -> None:
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.PylottoError)
               and c is not errors.PylottoError]
    assert set(classes) == set(errors.ERROR_TABLE)
