"""A small corpus of made-up facts no model can know, with questions about them: RAG must
win on faithfulness here, so a judge that says otherwise is wrong."""

DOCS = {
    "zephyr_queue.md": """
        # Zephyr Queue

        ## Visibility timeout

        In Zephyr Queue the default visibility timeout is 45 seconds. A message that is not
        acknowledged within 45 seconds becomes visible to other consumers again.

        ## Message size

        The largest message Zephyr Queue accepts is 384 kilobytes. Larger payloads must be stored
        in a Quillstore bucket and referenced by key.

        ## Retention

        Zephyr Queue keeps unacknowledged messages for 11 days before it deletes them.
        """,
    "quillstore.md": """
        # Quillstore

        ## Buckets

        A Quillstore account may hold at most 240 buckets. Bucket names must start with the
        letter q and be between 5 and 30 characters long.

        ## Replication

        Quillstore replicates every object to 3 data centres in the Marlow region before it
        confirms a write.

        ## Pricing

        Quillstore charges 7 cents per gigabyte per month for standard storage.
        """,
    "brantool.md": """
        # Brantool CLI

        ## Installing

        Brantool is installed with the command `brew tap ferrow/brantool` followed by
        `brew install brantool`. It requires Python 3.12 or newer.

        ## Configuration

        Brantool reads its configuration from the file `.brantool.toml` in the project root.
        The option `parallel_jobs` sets how many jobs run at once; its default is 6.

        ## Exit codes

        Brantool exits with code 17 when a lint rule fails and with code 23 when the
        configuration file is missing.

        ## Release

        Brantool 4.0 was released on 2 March 2021 by the Ferrow Foundation.
        """,
}

QUESTIONS = [
    "What is the default visibility timeout in Zephyr Queue?",
    "What is the largest message Zephyr Queue accepts?",
    "How long does Zephyr Queue keep unacknowledged messages?",
    "How many buckets may a Quillstore account hold?",
    "To how many data centres does Quillstore replicate an object?",
    "How much does Quillstore charge for standard storage?",
    "Which Python version does Brantool require?",
    "Which file does Brantool read its configuration from?",
    "What is the default value of parallel_jobs in Brantool?",
    "Which exit code does Brantool use when a lint rule fails?",
    "When was Brantool 4.0 released?",
    "What must Quillstore bucket names start with?",
]
