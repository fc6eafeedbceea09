"""Spies for tests that prove what a stage reads (e.g. that the privileged modality is never loaded)."""


def record_loads(dataset) -> list[list[str]]:
    """Replace ``dataset.load`` by a recording wrapper; the returned list fills with each call's names."""
    requested: list[list[str]] = []
    load = dataset.load

    def spy(index, names):
        requested.append(list(names))
        return load(index, names)

    dataset.load = spy
    return requested
