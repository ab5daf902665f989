"""The eight perspectives of DecodingTrust, one module each (see :data:`nvrepro.trust.registry.PERSPECTIVES`)."""
