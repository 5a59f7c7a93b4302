"""A small TaskFlow DAG: ``greet``'s return value is passed to ``shout``."""

from datetime import datetime

from ledgerflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1), tags=["example"], params={"name": "world"})
def hello():
    """Say hello through XCom."""

    @task
    def greet(params) -> str:
        return f"hello, {params['name']}"

    @task
    def shout(greeting: str) -> str:
        loud = greeting.upper() + "!"
        print(loud)
        return loud

    shout(greet())


hello()
