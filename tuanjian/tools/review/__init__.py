"""The review inbox's operator side: labelled messages written as training data."""
