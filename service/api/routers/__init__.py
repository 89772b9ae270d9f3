"""HTTP routers, one per domain; each is a thin layer over ``service.domain``."""
