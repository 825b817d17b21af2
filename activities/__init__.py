"""Activities: everything the parcel workflow does that touches the outside world."""
