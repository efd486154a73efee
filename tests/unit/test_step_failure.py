"""What a failed Dagster step tells a person (orchestration.runner.step_failure)."""

from types import SimpleNamespace as NS

from orchestration.runner import step_failure


def result(cause):
    wrapper = NS(cls_name="DagsterExecutionStepExecutionError", message="Error occurred while executing op", cause=cause)
    return NS(all_events=[NS(event_type_value="STEP_FAILURE", event_specific_data=NS(error=wrapper))])


def test_our_own_error_is_shown_and_a_database_error_never_quotes_a_value():
    ours = NS(cls_name="EncodingSchemeError", message="current encodings include another encoding scheme\nmore", cause=None)
    assert step_failure(result(ours)) == "current encodings include another encoding scheme"
    duck = NS(cls_name="ConversionException", message="Could not convert string 'JOHN SMITH' to INT32", cause=None)
    shown = step_failure(result(duck))
    assert "JOHN" not in shown and shown.startswith("ConversionException")
    assert step_failure(NS(all_events=[])) == "run failed"
