#include "proto/proto.h"

const struct net_proto *
proto_for_service(enum config_service service)
{
	switch (service) {
	case SERVICE_MX:
	case SERVICE_SUBMISSION:
	case SERVICE_SUBMISSIONS:
		return &proto_smtp;
	case SERVICE_IMAP:
	case SERVICE_IMAPS:
		return &proto_imap;
	case SERVICE_POP3:
	case SERVICE_POP3S:
		return &proto_pop3;
	case SERVICE_COUNT:
		break;
	}
	return NULL;
}
